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

Result<std::shared_ptr<enrich::LdapMapper>> makeLdapMapper(const config::LdapSettings& settings) {
  enrich::LdapOptions options;
  options.uris = settings.uris;
  options.bind_method = settings.bind_method;
  options.bind_dn = settings.bind_dn;
  if (!settings.bind_password_file.empty()) {
    auto password = readFirstLine(settings.bind_password_file, "ldap.bind_password_file");
    if (!password) return tl::unexpected(password.error());
    options.bind_password = std::move(*password);
  }
  options.starttls = settings.starttls;
  options.ca_file = settings.ca_file;
  options.cert_file = settings.cert_file;
  options.key_file = settings.key_file;
  options.tls_skip_verify = settings.tls_skip_verify;
  options.base_dn = settings.base_dn;
  options.scope = settings.scope;
  options.filter = settings.filter;
  options.result_attribute = settings.result_attribute;
  options.timeout = std::chrono::milliseconds(settings.timeout_ms);
  options.pool_size = static_cast<std::size_t>(settings.pool_size);
  options.max_queued = static_cast<std::size_t>(settings.max_queued);
  options.cache_ttl = std::chrono::seconds(settings.cache_ttl_s);
  options.negative_cache_ttl = std::chrono::seconds(settings.negative_cache_ttl_s);
  options.cache_entries = static_cast<std::size_t>(settings.cache_entries);
  auto mapper = enrich::LdapMapper::create(std::move(options));
  if (!mapper) return fail("ldap: " + mapper.error().message);
  return mapper;
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
