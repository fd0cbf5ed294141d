// enrichers.hpp — the options of the enrichers (DNS) and of the notifier as the configuration
// sets them: the enrich/ and notify/ folders know nothing of the configuration.
#pragma once

#include "config/settings.hpp"
#include "enrich/dns.hpp"
#include "enrich/ldap.hpp"
#include "notify/notifier.hpp"

namespace saslguard::engine {

enrich::DnsOptions dnsOptionsFrom(const config::DnsSettings& settings);

// The identity mapper [ldap] describes (reads the bind password file); does not connect.
Result<std::shared_ptr<enrich::LdapMapper>> makeLdapMapper(const config::LdapSettings& settings);

// The notifier the [notify] section describes (reads the password and template files).
Result<std::unique_ptr<notify::Notifier>> makeNotifier(const config::NotifySettings& settings);

}  // namespace saslguard::engine
