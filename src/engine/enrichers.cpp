// enrichers.cpp — see enrichers.hpp.
#include "engine/enrichers.hpp"

#include <fstream>
#include <sstream>

#include "common/files.hpp"

namespace saslguard::engine {

enrich::DnsOptions dnsOptionsFrom(const config::DnsSettings& settings) {
  enrich::DnsOptions options;
  options.servers = settings.servers;
  options.timeout = std::chrono::milliseconds(settings.timeout_ms);
  options.tries = settings.tries;
  options.max_ttl = std::chrono::seconds(settings.max_ttl_s);
  options.negative_ttl = std::chrono::seconds(settings.negative_ttl_s);
  options.cache_entries = static_cast<std::size_t>(settings.cache_entries);
  return options;
}

Result<std::unique_ptr<notify::Notifier>> makeNotifier(const config::NotifySettings& settings) {
  notify::HookOptions hook;
  hook.command = settings.hook_command;
  hook.timeout = std::chrono::seconds(settings.hook_timeout_s);
  hook.max_running = static_cast<std::size_t>(settings.hook_max_running);
  hook.max_queued = static_cast<std::size_t>(settings.hook_max_queued);
  notify::MailOptions mail;
  mail.url = settings.mail_url;
  mail.require_tls = settings.mail_require_tls;
  mail.verify_tls = settings.mail_verify_tls;
  mail.username = settings.mail_username;
  if (!settings.mail_password_file.empty()) {
    auto password = readFirstLine(settings.mail_password_file, "notify.mail_password_file");
    if (!password) return tl::unexpected(password.error());
    mail.password = std::move(*password);
  }
  mail.from = settings.mail_from;
  mail.to = settings.mail_to;
  mail.subject_template = settings.mail_subject;
  if (!settings.mail_template_file.empty()) {
    std::ifstream in(settings.mail_template_file);
    if (!in) {
      return fail("notify.mail_template_file: cannot read " + settings.mail_template_file);
    }
    std::ostringstream text;
    text << in.rdbuf();
    mail.body_template = text.str();
  }
  mail.max_attempts = settings.mail_max_attempts;
  auto notifier = notify::Notifier::create(std::move(hook), std::move(mail));
  if (!notifier) return fail("notify: " + notifier.error().message);
  return notifier;
}

}  // namespace saslguard::engine
