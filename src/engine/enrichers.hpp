// enrichers.hpp — the options of the enrichers (DNS) and of the notifier as the configuration
// sets them: the enrich/ and notify/ folders know nothing of the configuration.
#pragma once

#include "config/settings.hpp"
#include "enrich/dns.hpp"
#include "notify/notifier.hpp"

namespace saslguard::engine {

enrich::DnsOptions dnsOptionsFrom(const config::DnsSettings& settings);

// The notifier the [notify] section describes (reads the password and template files).
Result<std::unique_ptr<notify::Notifier>> makeNotifier(const config::NotifySettings& settings);

}  // namespace saslguard::engine
