// daemon.cpp — see daemon.hpp. The main thread runs the accept/control/signal event loop; worker
// threads run the policy connections (policy_server.cpp).
#include "server/daemon.hpp"

#include <signal.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <iostream>

#include "admin/api.hpp"
#include "admin/http_server.hpp"
#include "admin/metrics_endpoint.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "config/options.hpp"
#include "engine/detectors/reputation.hpp"
#include "engine/enrichers.hpp"
#include "engine/pipeline.hpp"
#include "engine/state_store.hpp"
#include "eventlog/sql_event_log.hpp"
#include "metrics/metrics.hpp"
#include "server/control.hpp"
#include "server/policy_server.hpp"
#include "server/privileges.hpp"
#include "server/systemd.hpp"

namespace saslguard::server {
namespace {

log::LogOptions logOptions(const config::LogSettings& settings) {
  return {settings.sink, settings.level, settings.syslog_facility, settings.syslog_ident};
}

ServerLimits serverLimits(const config::Settings& settings) {
  ServerLimits limits;
  limits.protocol.max_line_bytes = static_cast<std::size_t>(settings.protocol.max_line_bytes);
  limits.protocol.max_attributes = static_cast<std::size_t>(settings.protocol.max_attributes);
  limits.protocol.max_request_bytes = static_cast<std::size_t>(settings.protocol.max_request_bytes);
  limits.malformed_action =
      protocol::parseAction(settings.protocol.malformed_action).value_or(protocol::Action::Dunno);
  limits.max_connections = settings.server.max_connections;
  limits.idle_timeout_s = settings.server.idle_timeout_s;
  return limits;
}

std::string controlSocketPath(const config::Settings& settings) {
  const auto& name = settings.server.control_socket;
  if (name.empty()) return {};
  if (name.front() == '/') return name;
  return (std::filesystem::path(settings.state.dir) / name).string();
}

// Options that a reload cannot change: a changed one is reported and keeps its old value until
// the next restart (the listeners, threads, identity and state store are built once).
void warnAboutRestartOnlyChanges(const config::Settings& old, const config::Settings& fresh) {
  static constexpr std::string_view kRestartOnly[] = {"server.listen",
                                                      "server.threads",
                                                      "server.user",
                                                      "server.group",
                                                      "server.control_socket",
                                                      "server.unix_socket_mode",
                                                      "server.unix_socket_owner",
                                                      "server.unix_socket_group",
                                                      "log.sink",
                                                      "log.syslog_facility",
                                                      "log.syslog_ident",
                                                      "decisions.recent"};
  for (const auto* option : config::changedOptions(old, fresh)) {
    const auto name = option->name();
    const bool restartOnly =
        option->section == "state" || option->section == "eventlog" || option->section == "admin" ||
        std::find(std::begin(kRestartOnly), std::end(kRestartOnly), name) != std::end(kRestartOnly);
    if (restartOnly) {
      spdlog::warn("reload: {} changed; it takes effect only after a restart", name);
    } else {
      spdlog::info("reload: {} changed", name);
    }
  }
}

class Daemon {
 public:
  explicit Daemon(config::LoadRequest request) : request_(std::move(request)) {}

  int run() {
    auto loaded = config::load(request_);
    if (!loaded) {
      std::cerr << loaded.error().text() << "\n";
      return kExitConfig;
    }
    settings_ = std::make_shared<const config::Settings>(std::move(*loaded));
    if (auto logged = log::init(logOptions(settings_->log)); !logged) {
      std::cerr << "saslguard: " << logged.error().message << "\n";
      return kExitConfig;
    }
    ::signal(SIGPIPE, SIG_IGN);

    // Listeners first: a unix socket in the Postfix chroot may need root to create.
    std::vector<Acceptor> acceptors;
    std::vector<std::string> bound;
    const UnixSocketOptions unixOptions{settings_->server.unix_socket_mode,
                                        settings_->server.unix_socket_owner,
                                        settings_->server.unix_socket_group};
    for (const auto& text : settings_->server.listen) {
      auto address = parseListenAddress(text);
      if (!address) return startupFailure(address.error().message, kExitConfig);
      auto acceptor = bindListener(main_context_, *address, unixOptions);
      if (!acceptor) return startupFailure(acceptor.error().message, kExitFailure);
      bound.push_back(describeLocal(*acceptor, *address));
      acceptors.push_back(std::move(*acceptor));
    }
    if (auto dropped =
            dropPrivileges(settings_->server.user, settings_->server.group, settings_->state.dir);
        !dropped) {
      return startupFailure(dropped.error().message, kExitFailure);
    }

    auto opened = engine::openStateStore(*settings_, engine::StoreUse::kDaemon);
    if (!opened) return startupFailure(opened.error().message, kExitFailure);
    state_ = std::move(*opened);
    store_ = state_.store.get();

    recent_ = std::make_unique<engine::RecentDecisions>(
        static_cast<std::size_t>(settings_->decisions.recent));
    if (settings_->eventlog.enabled) {
      auto options = eventlog::optionsFrom(*settings_);
      if (!options) return startupFailure(options.error().message, kExitConfig);
      events_ = eventlog::SqlEventLog::start(std::move(*options));
    }
    auto notifier = engine::makeNotifier(settings_->notify);
    if (!notifier) return startupFailure(notifier.error().message, kExitConfig);
    notifier_ = std::move(*notifier);
    auto pipeline =
        engine::Pipeline::build(settings_, *store_, *recent_, events_.get(), notifier_.get());
    if (!pipeline) return startupFailure(pipeline.error().message, kExitConfig);
    if (auto tested = engine::selfTestReputationZones(*settings_); !tested) {
      return startupFailure(tested.error().message, kExitFailure);
    }
    pipeline_ = *pipeline;

    if (const auto path = controlSocketPath(*settings_); !path.empty()) {
      auto control = ControlServer::open(main_context_, path, *store_);
      if (!control) return startupFailure(control.error().message, kExitFailure);
      control_ = std::move(*control);
    }

    // Before the workers start, so a refusal (credentials, address) needs no shutdown.
    if (settings_->admin.enabled) {
      auto started = startAdmin();
      if (!started) return startupFailure(started.error().message, kExitConfig);
      bound.push_back("admin API on " + *started);
    }

    server_ = std::make_unique<PolicyServer>(main_context_, settings_->server.threads, *pipeline,
                                             serverLimits(*settings_));
    server_->start(std::move(acceptors));
    watchSignals();
    startWatchdog();

    const auto status =
        fmt::format("listening on {}; {}; detectors: {}; event log: {}", fmt::join(bound, ", "),
                    state_.describe(*settings_), (*pipeline)->detectorSummary(),
                    events_ ? events_->options().url.redacted : std::string("off"));
    spdlog::info("saslguard {} ready: {}", SASLGUARD_VERSION, status);
    systemd::ready(status);

    main_context_.run();

    server_->join();
    if (control_) control_->close();
    admin_.reset();
    stopNotifiers();
    stopEventLog();
    if (auto closed = state_.close(); !closed) {
      spdlog::error("writing state at shutdown failed: {}", closed.error().message);
      return kExitFailure;
    }
    spdlog::info("saslguard stopped");
    spdlog::shutdown();
    return kExitOk;
  }

 private:
  int startupFailure(const std::string& message, int code) {
    spdlog::critical("cannot start: {}", message);
    spdlog::shutdown();
    return code;
  }

  // Hooks still running get the shutdown grace, then are killed; unsent mail is dropped (counted).
  void stopNotifiers() {
    // One deadline for all of them, so several retired notifiers do not add up their graces.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(settings_->server.shutdown_grace_ms);
    const auto left = [&] {
      return std::max(std::chrono::milliseconds(0),
                      std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now()));
    };
    for (auto& retired : retired_notifiers_) retired->stop(left());
    if (notifier_) notifier_->stop(left());
  }

  // The workers are stopped: write what is queued, within a bounded wait, and say how it went.
  void stopEventLog() {
    if (!events_) return;
    events_->stop(std::chrono::milliseconds(std::max(1000, settings_->server.shutdown_grace_ms)));
    const auto stats = events_->stats();
    spdlog::info("event log stopped: {} row(s) written, {} dropped, {} database error(s)",
                 stats.written, stats.dropped, stats.write_errors);
    events_.reset();
  }

  void watchSignals() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        (void)reload();
        watchSignals();
        return;
      }
      spdlog::info("received {}; stopping (grace {} ms)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
                   settings_->server.shutdown_grace_ms);
      systemd::stopping();
      if (control_) control_->close();
      stopping_ = true;
      if (admin_) admin_->stop();
      watchdog_.cancel();
      server_->stop(std::chrono::milliseconds(settings_->server.shutdown_grace_ms), [this] {
        signals_.cancel();
        main_context_.stop();
      });
    });
  }

  // SIGHUP, and the admin API's reload: the error says why the new configuration was rejected.
  Result<void> reload() {
    systemd::reloading();
    auto loaded = config::load(request_);
    if (!loaded) {
      SASLGUARD_COUNT(reload_failures_total);
      spdlog::error("reload rejected, keeping the running configuration:\n{}",
                    loaded.error().text());
      systemd::ready("reload rejected; running configuration kept");
      return fail(loaded.error().text());
    }
    auto fresh = std::make_shared<const config::Settings>(std::move(*loaded));
    const auto rejected = [](const std::string& why) -> Result<void> {
      SASLGUARD_COUNT(reload_failures_total);
      spdlog::error("reload rejected, keeping the running configuration: {}", why);
      systemd::ready("reload rejected; running configuration kept");
      return fail(why);
    };
    // A new notifier only when its settings changed; the old one lives on (pipelines still
    // running may hand it a mark) and is stopped at shutdown.
    std::unique_ptr<notify::Notifier> notifier;
    for (const auto* option : config::changedOptions(*settings_, *fresh)) {
      if (option->section != "notify" || notifier) continue;
      auto made = engine::makeNotifier(fresh->notify);
      if (!made) return rejected(made.error().message);
      notifier = std::move(*made);
    }
    auto pipeline =
        engine::Pipeline::build(fresh, *store_, *recent_, events_.get(),
                                notifier ? notifier.get() : notifier_.get(), pipeline_.get());
    if (!pipeline) return rejected(pipeline.error().message);
    if (auto tested = engine::selfTestReputationZones(*fresh); !tested) {
      return rejected(tested.error().message);
    }
    if (notifier) {
      retired_notifiers_.push_back(std::move(notifier_));
      notifier_ = std::move(notifier);
    }
    warnAboutRestartOnlyChanges(*settings_, *fresh);
    if (fresh->log.level != settings_->log.level) (void)log::setLevel(fresh->log.level);
    server_->reload(*pipeline, serverLimits(*fresh));
    pipeline_ = *pipeline;
    settings_ = fresh;
    SASLGUARD_COUNT(reloads_total);
    spdlog::info("configuration reloaded from {}; detectors: {}",
                 fresh->source_path.empty() ? "defaults" : fresh->source_path,
                 (*pipeline)->detectorSummary());
    systemd::ready("configuration reloaded");
    return {};
  }

  // The admin API on the main event loop; returns the address it listens on.
  Result<std::string> startAdmin() {
    const auto& settings = settings_->admin;
    admin::AdminOptions options;
    options.listen = settings.listen;
    options.tls_cert_file = settings.tls_cert_file;
    options.tls_key_file = settings.tls_key_file;
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return fail("admin.tls_cert_file and admin.tls_key_file go together");
    }
    options.basic_user = settings.basic_user;
    options.basic_password = settings.basic_password;
    if (!settings.basic_password_file.empty()) {
      auto password = readFirstLine(settings.basic_password_file, "admin.basic_password_file");
      if (!password) return tl::unexpected(password.error());
      options.basic_password = std::move(*password);
    }
    if (!options.basic_user.empty() && options.basic_password.empty()) {
      return fail("admin.basic_user is set but no password (admin.basic_password_file)");
    }
    if (!settings.bearer_tokens_file.empty()) {
      auto tokens = readLines(settings.bearer_tokens_file, "admin.bearer_tokens_file");
      if (!tokens) return tl::unexpected(tokens.error());
      options.bearer_tokens = std::move(*tokens);
    }
    options.max_body_bytes = static_cast<std::size_t>(settings.max_body_kb) * 1024;
    options.read_timeout = std::chrono::milliseconds(settings.read_timeout_ms);
    options.write_timeout = std::chrono::milliseconds(settings.write_timeout_ms);
    options.idle_timeout = std::chrono::milliseconds(settings.idle_timeout_ms);
    options.max_connections = static_cast<std::size_t>(settings.max_connections);

    auto context = std::make_shared<admin::ApiContext>();
    context->context = &main_context_;
    context->store = store_;
    context->recent = recent_.get();
    context->pipeline = [this] { return pipeline_; };
    context->reload = [this] { return reload(); };
    context->policy_ready = [this] { return server_ != nullptr && !stopping_; };
    admin::ScrapeSources sources;
    sources.store = [this] { return store_->stats(); };
    if (events_) sources.eventlog = [this] { return events_->stats(); };
    sources.hook_queue = [this] { return notifier_->hooksQueued(); };
    sources.mail_queue = [this] { return notifier_->mailsQueued(); };
    sources.ldap_queue = [this] {
      const auto& ldap = pipeline_->ldapMapper();
      return ldap ? ldap->queued() : std::size_t{0};
    };
    context->metrics = [sources] { return admin::renderPrometheus(sources); };
    auto server = admin::AdminServer::start(main_context_, std::move(options),
                                            admin::makeApiRouter(context, settings));
    if (!server) return fail("admin API: " + server.error().message);
    admin_ = std::move(*server);
    const auto colon = settings.listen.rfind(':');
    return settings.listen.substr(0, colon + 1) + std::to_string(admin_->port());
  }

  void startWatchdog() {
    const auto interval = systemd::watchdogInterval();
    if (!interval) return;
    watchdog_.expires_after(*interval);
    watchdog_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      // Ping only while every worker thread answers: a stuck worker gets us restarted.
      if (server_->heartbeat()) {
        systemd::watchdogPing();
      } else {
        spdlog::warn("a worker thread did not answer the last heartbeat; not pinging the watchdog");
      }
      startWatchdog();
    });
  }

  config::LoadRequest request_;
  config::SettingsPtr settings_;
  asio::io_context main_context_{1};
  asio::signal_set signals_{main_context_, SIGTERM, SIGINT, SIGHUP};
  asio::steady_timer watchdog_{main_context_};
  engine::StateStore state_;       // embedded or Redis (state.backend)
  store::Store* store_ = nullptr;  // state_.store
  std::unique_ptr<engine::RecentDecisions> recent_;
  std::unique_ptr<eventlog::SqlEventLog> events_;  // outlives every pipeline that points to it
  std::unique_ptr<notify::Notifier> notifier_;     // as do these
  engine::PipelinePtr pipeline_;  // the one in force: a reload takes its LDAP pool and DNS cache
  std::vector<std::unique_ptr<notify::Notifier>> retired_notifiers_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<PolicyServer> server_;
  std::unique_ptr<admin::AdminServer> admin_;
  bool stopping_ = false;
};

}  // namespace

int runDaemon(const config::LoadRequest& request) {
  return Daemon(request).run();
}

}  // namespace saslguard::server
