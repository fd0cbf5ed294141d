// settings.hpp — the one settings tree, as plain typed structs with their defaults. The option
// table (options.cpp) maps every `section.key` to a member here; it feeds the TOML loader, the
// environment, the command line, check-config and docs/configuration.md, so nothing drifts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace saslguard::config {

struct ServerSettings {
  // "127.0.0.1:10040", "[::1]:10040", "unix:/var/spool/postfix/private/saslguard"
  std::vector<std::string> listen{"127.0.0.1:10040"};
  int threads = 0;  // 0 = number of cores
  int max_connections = 4096;
  int idle_timeout_s = 600;  // above Postfix's smtpd_policy_service_max_idle (300 s)
  int shutdown_grace_ms = 5000;
  std::string unix_socket_mode = "0660";
  std::string unix_socket_owner;
  std::string unix_socket_group;
  std::string user;                             // drop privileges to this user after binding
  std::string group;                            // and this group
  std::string control_socket = "control.sock";  // relative to state.dir; "" disables it
};

struct ProtocolSettings {
  int max_line_bytes = 16384;
  int max_attributes = 256;
  int max_request_bytes = 65536;
  // Answer to a request that cannot be understood (bad line, wrong request type, too large).
  std::string malformed_action = "DUNNO";
};

struct LogSettings {
  std::string sink = "stderr";  // stderr | syslog | json
  std::string level = "info";   // trace | debug | info | warn | error | off
  std::string syslog_facility = "mail";
  std::string syslog_ident = "saslguard";
};

struct IdentitySettings {
  std::string source = "sasl_username";  // sasl_username | sender
  bool strip_domain = false;             // user@example.org -> user (UVSQ policyd accounts)
  // Requests without a SASL login: "skip" answers DUNNO without touching state; "evaluate"
  // evaluates them under the sender address (only meaningful with source = sender).
  std::string unauthenticated = "skip";
};

// Maps the identity (a login or an alias) to its account through LDAP before anything else, so
// every detector, the registry and the API see one account per person (geoip-policyd's mapping).
struct LdapSettings {
  bool enabled = false;
  std::vector<std::string> uris{"ldap://127.0.0.1:389"};  // tried in order
  std::string bind_method = "simple";  // simple (bind_dn; none: anonymous) | external (SASL)
  std::string bind_dn;
  std::string bind_password_file;  // its first line is the bind password
  bool starttls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool tls_skip_verify = false;
  std::string base_dn;
  std::string scope = "sub";  // base | one | sub
  std::string filter = "(|(uid=%s)(mail=%s)(mailLocalAddress=%s))";
  std::string result_attribute = "uid";
  int timeout_ms = 3000;
  int pool_size = 4;
  int max_queued = 1000;
  int cache_ttl_s = 300;
  int negative_cache_ttl_s = 60;
  int cache_entries = 100000;
  std::string not_found = "keep";        // keep the identity | skip the request (DUNNO)
  std::string failure_action = "DUNNO";  // DUNNO (fail open, unmapped identity skipped) | DEFER
};

struct ListsSettings {
  std::vector<std::string> allow_accounts;  // never evaluated
  std::vector<std::string> allow_networks;  // client addresses/CIDRs never evaluated
};

struct RepliesSettings {
  std::string reject_text = "5.7.1 Sending from this account is blocked; contact your support";
  std::string defer_text = "4.7.1 Service temporarily unavailable; try again later";
  std::string hold_text = "Message held for review";
};

struct RegistrySettings {
  std::string action =
      "REJECT";  // answer for an account marked compromised: REJECT|DEFER|HOLD|DUNNO
  std::string reply_text = "5.7.1 This account is blocked; contact your support";
};

struct StateSettings {
  std::string backend = "embedded";
  std::string dir = "/var/lib/saslguard";
  int flush_interval_ms = 500;          // counters written behind the request path at this pace
  std::int64_t max_accounts = 2000000;  // tracked accounts held in memory at most
  int idle_expiry_s = 172800;           // an account with no activity for this long is forgotten
  std::int64_t lmdb_map_size_mb = 4096;
  // Answer when the store cannot be used for a request (Redis down or slow): DUNNO fails open,
  // DEFER fails closed (Postfix retries later).
  std::string failure_action = "DUNNO";
};

// state.backend = "redis": the shared store of a fleet of MTAs. See docs/redis.md.
struct RedisSettings {
  std::string server = "127.0.0.1:6379";  // host:port, when no sentinels are given
  std::vector<std::string> sentinels;     // host:port; set: the primary comes from Sentinel
  std::string master_name = "mymaster";
  std::string sentinel_username;
  std::string sentinel_password_file;  // its first line is Sentinel's password
  int sentinel_timeout_ms = 500;
  std::string username;       // ACL user (Redis 6+); empty with a password: AUTH <password>
  std::string password_file;  // its first line is the password; empty: no AUTH
  int database = 0;
  int pool_size = 2;
  int connect_timeout_ms = 500;
  int command_timeout_ms = 250;
  int reconnect_min_ms = 50;
  int reconnect_max_ms = 1000;
  int max_in_flight = 10000;
  std::string key_prefix = "saslguard";
  std::string registry_set = "compromised_accts";
  int max_set_entries = 1024;
  int audit_entries = 200;
  int wait_replicas = 0;
  int wait_timeout_ms = 1000;
  int registry_cache_entries = 100000;  // marks known locally (pub/sub keeps them fresh); 0: none
};

// The local Postfix whose hold queue `saslguard accounts held|release|purge` and the API act on.
struct PostfixSettings {
  std::string config_directory = "/etc/postfix";  // passed as -c to postqueue, postsuper, postcat
  std::string command_directory = "/usr/sbin";    // where those commands are
  int command_timeout_ms = 30000;
  int max_messages = 10000;  // held messages listed or acted on per call at most
};

struct DecisionsSettings {
  int recent = 10000;  // decision records kept in memory for the log and the API
};

// The SQL event log: one row per counted message (UVSQ policyd's `events` table, extended).
struct EventlogSettings {
  bool enabled = true;
  // "" = sqlite file events.sqlite in state.dir; sqlite:///path, mysql://user:pass@host:port/db,
  // postgresql://user@host:port/db — without the password, which is read from password_file
  std::string url;
  std::string password_file;  // the database password, on the file's first line
  std::string table = "events";
  int queue_rows = 100000;  // rows waiting for the database at most; more are dropped
  int batch_rows = 1000;    // rows per transaction at most
  int flush_interval_ms = 200;
  int retention_days = 7;  // 0 keeps rows for ever
};

// Every detector has these switches.
struct DetectorSwitches {
  bool enabled = true;
  bool shadow = false;  // evaluated, logged and counted as "would have", never enforced
  std::string action = "REJECT";
  std::string reply_text;  // empty: the default text for the action
};

struct DenylistSettings : DetectorSwitches {
  std::vector<std::string> accounts;
  std::vector<std::string> senders;
  std::vector<std::string> networks;
};

// Recipients per account over sliding windows (UVSQ policyd): HOLD from the quota on, the
// action (REJECT) from hold_factor x quota on. See docs/detectors/quota.md.
struct QuotaSettings : DetectorSwitches {
  QuotaSettings() { reply_text = "5.7.1 Recipient quota exceeded; contact your support"; }
  std::vector<std::string> windows{"24h:1500"};  // "DURATION:QUOTA", DURATION as 90s, 30m, 24h, 7d
  std::string hold_factor = "2";                 // a decimal number >= 1: REJECT at factor x quota
  std::string count_at = "end-of-message";       // end-of-message (recipient_count) | rcpt (1 each)
  std::string hold_text = "Quota exceeded, message held for review";
  std::vector<std::string> accounts;  // "account:quota" or "@domain:quota" (first window's quota)
  std::string overrides_file;         // more of them, "account-or-@domain quota" per line
  std::vector<std::string> whitelist_accounts;  // not counted during office hours
  std::vector<std::string> whitelist_senders;
  std::vector<std::string> whitelist_networks;
  std::string office_hours = "Mon-Fri 07:00-19:59";
  std::string time_zone;  // an IANA name ("Europe/Paris"); empty: the system's /etc/localtime
  std::vector<std::string> blacklist_accounts;  // answered blacklist_action at any time
  std::vector<std::string> blacklist_senders;
  std::vector<std::string> blacklist_networks;
  std::string blacklist_action = "HOLD";
  std::string blacklist_text = "Blacklisted, message held for review";
  std::string mark_on = "none";  // none | hold | reject: mark the account compromised
  bool log_counts = false;       // UVSQ's user/sender/ip/recipients/sum line at info, not debug
};

// Client address and hashed recipient looked up in DNS reputation zones (Abusix AUTH policy
// daemon): a listing marks the account compromised. See docs/detectors/reputation.md.
struct ReputationSettings : DetectorSwitches {
  ReputationSettings() {
    enabled = false;
    action = "LOG";
  }
  std::string preset = "none";  // none | abusix (the two authbl zones; only api_key needed)
  std::string api_key;          // the label between the reversed item and a keyed zone
  std::string api_key_file;     // or: a file whose first line is the key
  // "KIND ZONE [key] [listed=CODES] [action=ACTION] [test=ITEM]", KIND client-ip or
  // hashed-recipient, CODES 127.0.0.4|127.0.0.0/24 (default: any 127.0.0.0/8 answer)
  std::vector<std::string> zones;
  std::string self_test = "fail";            // fail | warn | off: test points at start and reload
  std::string dns_failure_action = "DUNNO";  // DUNNO (fail open) | DEFER (fail closed)
  int mark_expiry_s = 0;                     // 0: marks stay until an operator clears them
};

// Distinct client IPs and countries per account (geoip-policyd): over max_ips / max_countries
// (foreign) or max_home_ips / max_home_countries (home) within ttl_s fires. See
// docs/detectors/geo.md.
struct GeoSettings : DetectorSwitches {
  GeoSettings() {
    enabled = false;
    reply_text = "5.7.1 Policy violation. Please contact your support";
  }
  std::string database = "/usr/share/GeoIP/GeoLite2-City.mmdb";  // City or Country MaxMind DB
  std::string missing_database = "fail";  // fail | disable (warn and run without geo)
  int database_check_interval_s = 60;     // how often the file is checked for a new version
  int max_ips = 10;                       // distinct foreign client IPs, fires when greater
  int max_countries = 3;
  int max_home_ips = 10;
  int max_home_countries = 3;
  std::vector<std::string> home_countries;     // ISO codes counted apart, with the home limits
  std::vector<std::string> trusted_countries;  // non-empty: the only countries allowed
  std::vector<std::string> trusted_networks;   // non-empty: the only client networks allowed
  std::vector<std::string> ignore_networks;    // never looked at by this detector
  int ttl_s = 3600;              // an IP or country counts until this long after it was last seen
  int ipv6_prefix = 64;          // IPv6 clients are counted per prefix of this length
  bool block_permanent = false;  // firing marks the account compromised until cleared
  std::string custom_settings_file;  // geoip-policyd's JSON: per-account limits and lists
};

struct DetectorsSettings {
  DenylistSettings denylist;
  QuotaSettings quota;
  ReputationSettings reputation;
  GeoSettings geo;
};

// The resolver the DNS lookups use (c-ares), with its answer cache.
struct DnsSettings {
  std::vector<std::string> servers;  // "127.0.0.1", "127.0.0.1:5353", "[::1]:53"; empty: system
  int timeout_ms = 1000;             // per try
  int tries = 2;
  int max_ttl_s = 3600;      // positive answers are cached for their TTL, at most this long
  int negative_ttl_s = 300;  // "not listed" answers are cached this long at most
  int cache_entries = 100000;
};

// What happens off the request path when an account is newly marked compromised.
struct NotifySettings {
  std::vector<std::string> hook_command;  // argv, absolute path first; empty: no hook
  int hook_timeout_s = 30;
  int hook_max_running = 4;
  int hook_max_queued = 1000;
  std::string mail_url;  // smtp://host:587 (STARTTLS when offered), smtps://host:465; "": off
  bool mail_require_tls = false;
  bool mail_verify_tls = true;
  std::string mail_username;
  std::string mail_password_file;  // first line is the SMTP password
  std::string mail_from;
  std::vector<std::string> mail_to;
  std::string mail_subject = "saslguard: {account} marked compromised by {detector}";
  std::string mail_template_file;  // body with {placeholders}; empty: a built-in text
  int mail_max_attempts = 8;
};

// The admin HTTP API (native /api/v1, geoip-policyd's endpoints, /metrics, health checks).
struct AdminSettings {
  bool enabled = false;
  std::string listen = "127.0.0.1:8080";  // host:port; anything but loopback needs credentials
  std::string tls_cert_file;              // both set: HTTPS
  std::string tls_key_file;
  std::string basic_user;  // empty: no HTTP Basic
  std::string basic_password;
  std::string basic_password_file;  // its first line is the password
  std::string bearer_tokens_file;   // one token per line; empty: no bearer tokens
  int max_body_kb = 1024;
  int read_timeout_ms = 10000;
  int write_timeout_ms = 30000;
  int idle_timeout_ms = 60000;
  int max_connections = 64;
  bool geoip_policyd_endpoints =
      true;                    // /reload, /query, /remove, ... as geoip-policyd serves them
  bool query_records = false;  // POST /query records the address like a real request
};

struct Settings {
  ServerSettings server;
  ProtocolSettings protocol;
  LogSettings log;
  IdentitySettings identity;
  LdapSettings ldap;
  ListsSettings lists;
  RepliesSettings replies;
  RegistrySettings registry;
  StateSettings state;
  RedisSettings redis;
  PostfixSettings postfix;
  DecisionsSettings decisions;
  EventlogSettings eventlog;
  DnsSettings dns;
  NotifySettings notify;
  AdminSettings admin;
  DetectorsSettings detectors;

  std::string source_path;  // the file these came from ("" for defaults only)
};

using SettingsPtr = std::shared_ptr<const Settings>;

}  // namespace saslguard::config
