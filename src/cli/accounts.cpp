// accounts.cpp — `saslguard accounts list|show|block|clear`: the compromise registry with its
// evidence, through the running daemon's control socket; when none answers, on the store directly
// (the state directory, which no daemon may hold then; or Redis, shared, so every instance sees
// it).
#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/json.hpp>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "config/loader.hpp"
#include "engine/identity.hpp"
#include "engine/state_store.hpp"
#include "server/control.hpp"

namespace saslguard::cli {
namespace {

namespace json = boost::json;

struct AccountsOptions {
  config::LoadRequest request;
  std::string account;
  std::string reason;
  std::string after;
  int limit = 1000;
  bool as_json = false;
};

std::string invoker() {
  const auto* pw = ::getpwuid(::getuid());
  return "cli:" + (pw != nullptr ? std::string(pw->pw_name) : "uid" + std::to_string(::getuid()));
}

std::string formatTime(std::int64_t ms) {
  const std::time_t seconds = ms / 1000;
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string textOf(const json::value& value) {
  if (value.is_string()) return std::string(value.as_string());
  if (value.is_null()) return "-";
  return json::serialize(value);
}

// Sends the command to the daemon if one answers on the control socket, else runs it on the
// state directory directly.
Result<json::object> execute(const config::Settings& settings, const json::object& command) {
  std::string socket = settings.server.control_socket;
  if (!socket.empty() && socket.front() != '/') {
    socket = (std::filesystem::path(settings.state.dir) / socket).string();
  }
  if (!socket.empty() && std::filesystem::exists(socket)) {
    auto answer = server::controlRequest(socket, command);
    if (answer) return answer;
    std::cerr << "note: " << answer.error().message << "; using the state directory directly\n";
  }
  if (settings.state.backend != "redis" && !std::filesystem::exists(settings.state.dir)) {
    return fail("no daemon answers and the state directory " + settings.state.dir +
                " does not exist");
  }
  // Redis is shared: a change made here reaches every instance (and their registry caches).
  auto state = engine::openStateStore(settings, engine::StoreUse::kTool);
  if (!state) return tl::unexpected(state.error());
  auto answer = server::executeControl(command, *state->store, invoker());
  if (auto closed = state->close(); !closed) return tl::unexpected(closed.error());
  return answer;
}

void printMark(const json::object& mark) {
  std::cout << "  detector:   " << textOf(mark.at("detector")) << "\n"
            << "  reason:     " << textOf(mark.at("reason")) << "\n"
            << "  action:     " << textOf(mark.at("action")) << "\n"
            << "  evidence:   " << textOf(mark.at("evidence")) << "\n"
            << "  first seen: " << formatTime(mark.at("first_seen_ms").to_number<std::int64_t>())
            << "\n"
            << "  last seen:  " << formatTime(mark.at("last_seen_ms").to_number<std::int64_t>())
            << "\n"
            << "  refused:    " << textOf(mark.at("hits")) << " request(s)\n";
  if (!mark.at("expires_ms").is_null()) {
    std::cout << "  expires:    " << formatTime(mark.at("expires_ms").to_number<std::int64_t>())
              << "\n";
  }
}

int run(const std::string& verb, AccountsOptions& options) {
  options.request.environment = config::currentEnvironment();
  auto settings = config::load(options.request);
  if (!settings) {
    std::cerr << settings.error().text() << "\n";
    return 78;
  }
  json::object command{{"command", "accounts." + verb}};
  if (verb == "list") {
    command["after"] = options.after;
    command["limit"] = options.limit;
  } else {
    command["account"] = engine::IdentityResolver(settings->identity).normalise(options.account);
    if (verb == "clear" || verb == "block") command["reason"] = options.reason;
  }
  auto answer = execute(*settings, command);
  if (!answer) {
    std::cerr << "saslguard: " << answer.error().message << "\n";
    return 1;
  }
  if (!answer->at("ok").as_bool()) {
    std::cerr << "saslguard: " << textOf(answer->at("error")) << "\n";
    return 1;
  }
  if (options.as_json) {
    std::cout << json::serialize(*answer) << "\n";
    return 0;
  }
  if (verb == "list") {
    const auto& accounts = answer->at("accounts").as_array();
    if (accounts.empty()) std::cout << "no account is marked compromised\n";
    for (const auto& entry : accounts) {
      const auto& mark = entry.as_object();
      std::cout << fmt::format("{:<40} {:<11} {:<7} {}  {}\n", textOf(mark.at("account")),
                               textOf(mark.at("detector")), textOf(mark.at("action")),
                               formatTime(mark.at("first_seen_ms").to_number<std::int64_t>()),
                               textOf(mark.at("reason")));
    }
  } else if (verb == "show") {
    const auto& view = answer->at("account").as_object();
    std::cout << "account " << textOf(view.at("account")) << "\n";
    if (view.at("mark").is_null()) {
      std::cout << "  not marked compromised\n";
    } else {
      printMark(view.at("mark").as_object());
    }
    for (const auto& c : view.at("counters").as_array()) {
      const auto& counter = c.as_object();
      std::cout << "  counter " << textOf(counter.at("name")) << ": " << textOf(counter.at("total"))
                << " in the last " << textOf(counter.at("window_s")) << " s\n";
    }
    for (const auto& s : view.at("sets").as_array()) {
      const auto& set = s.as_object();
      std::cout << "  set " << textOf(set.at("name")) << ": " << set.at("entries").as_array().size()
                << " live value(s)\n";
    }
    for (const auto& a : view.at("audit").as_array()) {
      const auto& entry = a.as_object();
      std::cout << "  " << formatTime(entry.at("at_ms").to_number<std::int64_t>()) << " "
                << textOf(entry.at("event")) << " by " << textOf(entry.at("by"))
                << (textOf(entry.at("reason")).empty() ? "" : ": " + textOf(entry.at("reason")))
                << "\n";
    }
  } else if (verb == "block") {
    std::cout << (answer->at("new").as_bool() ? "blocked " : "already blocked: ") << options.account
              << "\n";
  } else {
    const bool cleared = answer->at("cleared").as_bool();
    std::cout << (cleared ? "cleared " : "not marked: ") << options.account << "\n";
    return cleared ? 0 : 3;
  }
  return 0;
}

}  // namespace

Command addAccounts(CLI::App& app) {
  auto* accounts =
      app.add_subcommand("accounts",
                         "compromised accounts (list, show, block, clear) and their held mail "
                         "(held, release, purge)");
  accounts->require_subcommand(1);
  auto options = std::make_shared<AccountsOptions>();
  auto verb = std::make_shared<std::string>();
  const auto common = [&](CLI::App* sub) {
    config::addFlags(*sub, options->request);
    sub->add_flag("--json", options->as_json, "print the raw JSON answer");
    sub->callback([verb, sub] { *verb = sub->get_name(); });
  };
  auto* list = accounts->add_subcommand("list", "accounts marked compromised");
  list->add_option("--after", options->after, "page: start after this account");
  list->add_option("--limit", options->limit, "page size")->check(CLI::Range(1, 100000));
  common(list);
  auto* show = accounts->add_subcommand("show", "one account: mark, evidence, counters, audit");
  show->add_option("account", options->account, "the account")->required();
  common(show);
  auto* block = accounts->add_subcommand(
      "block", "mark an account compromised by hand (refused until cleared)");
  block->add_option("account", options->account, "the account")->required();
  block->add_option("--reason", options->reason, "why (kept in the audit trail)");
  common(block);
  auto* clear = accounts->add_subcommand("clear", "unblock an account (recorded with who and why)");
  clear->add_option("account", options->account, "the account")->required();
  clear->add_option("--reason", options->reason, "why (kept in the audit trail)");
  common(clear);
  // held, release and purge: the account's mail in Postfix's hold queue (hold_queue.cpp).
  auto hold_queue = addHoldQueueVerbs(*accounts);
  return [options, verb, hold_queue] {
    if (auto code = hold_queue()) return *code;
    return run(*verb, *options);
  };
}

}  // namespace saslguard::cli
