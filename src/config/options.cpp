// options.cpp — the option table (see options.hpp) and the conversions every source shares.
// To add an option: add the member to settings.hpp, one SASLGUARD_OPTION line here, then
// regenerate docs/configuration.md and etc/saslguard.toml (see tests/config/generated_test.cpp).
#include "config/options.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <type_traits>
#include <unordered_set>

#include "common/network.hpp"
#include "common/strings.hpp"
#include "config/checks.hpp"
#include "config/zones.hpp"

namespace saslguard::config {

namespace {

const std::vector<std::string> kActions{"REJECT", "DEFER", "HOLD", "DUNNO"};

// Chains the attributes of one entry onto the option just added.
class Entry {
 public:
  explicit Entry(Option& option) : option_(option) {}
  Entry& range(std::int64_t min, std::int64_t max) {
    option_.min = min;
    option_.max = max;
    return *this;
  }
  Entry& oneOf(std::vector<std::string> allowed) {
    option_.type = OptionType::kEnum;
    option_.allowed = std::move(allowed);
    return *this;
  }
  Entry& checkedBy(ItemCheck check) {
    option_.check = check;
    return *this;
  }
  Entry& flagAlias(std::string alias) {
    option_.flag_aliases.push_back(std::move(alias));
    return *this;
  }
  Entry& help(std::string text) {
    option_.help = std::move(text);
    return *this;
  }
  Entry& since(std::string version) {
    option_.since = std::move(version);
    return *this;
  }
  Entry& secret() {
    option_.secret = true;
    return *this;
  }

 private:
  Option& option_;
};

class TableBuilder {
 public:
  // `access` is a generic lambda returning the member, so the same lambda serves the const
  // read and the mutable write; the member's C++ type decides the option type.
  template <class Access>
  Entry add(std::string section, std::string key, Access access) {
    using T = std::remove_cvref_t<decltype(access(std::declval<Settings&>()))>;
    Option option;
    option.section = std::move(section);
    option.key = std::move(key);
    if constexpr (std::is_same_v<T, bool>) {
      option.type = OptionType::kBool;
    } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::int64_t>) {
      option.type = OptionType::kInt;
      option.max = std::is_same_v<T, int> ? INT_MAX : INT64_MAX;  // narrowed by range()
    } else if constexpr (std::is_same_v<T, std::string>) {
      option.type = OptionType::kString;
    } else {
      static_assert(std::is_same_v<T, std::vector<std::string>>, "unsupported option type");
      option.type = OptionType::kStringList;
    }
    option.read = [access](const Settings& settings) -> Value {
      const auto& member = access(settings);
      if constexpr (std::is_same_v<T, int>) {
        return std::int64_t{member};
      } else {
        return member;
      }
    };
    option.write = [access](Settings& settings, Value value) {
      auto& member = access(settings);
      if constexpr (std::is_same_v<T, int>) {
        member = static_cast<int>(std::get<std::int64_t>(value));
      } else {
        member = std::get<T>(std::move(value));
      }
    };
    intMax_.push_back(std::is_same_v<T, int> ? INT_MAX : INT64_MAX);
    table_.push_back(std::move(option));
    return Entry(table_.back());
  }

  std::vector<Option> finish() &&;

 private:
  std::vector<Option> table_;
  std::vector<std::int64_t> intMax_;  // per entry: the largest value its member can hold
};

#define SASLGUARD_OPTION(section, key) \
  table.add(                           \
      #section, #key, [](auto& s) -> auto& { return s.section.key; })

std::vector<Option> buildTable() {
  TableBuilder table;

  SASLGUARD_OPTION(server, listen)
      .checkedBy(checkListen)
      .flagAlias("listen")
      .help("addresses to accept Postfix connections on: HOST:PORT, [IPv6]:PORT or unix:/path");
  SASLGUARD_OPTION(server, threads)
      .range(0, 1024)
      .help("worker threads answering requests; 0 means one per CPU core");
  SASLGUARD_OPTION(server, max_connections)
      .range(1, 1000000)
      .help("most Postfix connections open at once; further ones wait until one closes");
  SASLGUARD_OPTION(server, idle_timeout_s)
      .range(1, 86400)
      .help("close a connection idle this long; keep above smtpd_policy_service_max_idle (300)");
  SASLGUARD_OPTION(server, shutdown_grace_ms)
      .range(0, 600000)
      .help("on shutdown, time given to requests in progress before connections are closed");
  SASLGUARD_OPTION(server, unix_socket_mode)
      .checkedBy(checkSocketMode)
      .help("permissions of unix listening sockets, in octal");
  SASLGUARD_OPTION(server, unix_socket_owner)
      .help("owner (user name) given to unix listening sockets; empty keeps the daemon's");
  SASLGUARD_OPTION(server, unix_socket_group)
      .help("group given to unix listening sockets; empty keeps the daemon's");
  SASLGUARD_OPTION(server, user)
      .help("after binding the listeners, drop privileges to this user; empty stays as started");
  SASLGUARD_OPTION(server, group)
      .help("after binding the listeners, drop privileges to this group; empty: the user's group");
  SASLGUARD_OPTION(server, control_socket)
      .help(
          "control socket for saslguard commands; relative paths are under state.dir; empty: none");

  SASLGUARD_OPTION(protocol, max_line_bytes)
      .range(256, 1048576)
      .help("longest attribute line accepted from Postfix");
  SASLGUARD_OPTION(protocol, max_attributes)
      .range(1, 65536)
      .help("most attributes accepted in one request");
  SASLGUARD_OPTION(protocol, max_request_bytes)
      .range(256, 16777216)
      .help("largest request accepted, all lines together; at least max_line_bytes");
  SASLGUARD_OPTION(protocol, malformed_action)
      .oneOf(kActions)
      .help("answer to a request that cannot be understood (bad line, wrong type, too large)");

  SASLGUARD_OPTION(log, sink)
      .oneOf({"stderr", "syslog", "json"})
      .help("where log lines go: stderr text, syslog, or JSON lines on stderr");
  SASLGUARD_OPTION(log, level)
      .oneOf({"trace", "debug", "info", "warn", "error", "off"})
      .help("least severe level logged");
  SASLGUARD_OPTION(log, syslog_facility)
      .oneOf({"mail", "daemon", "user", "auth", "local0", "local1", "local2", "local3", "local4",
              "local5", "local6", "local7"})
      .help("syslog facility, with sink = syslog");
  SASLGUARD_OPTION(log, syslog_ident)
      .checkedBy(checkNotEmpty)
      .help("program name in syslog lines, with sink = syslog");

  SASLGUARD_OPTION(identity, source)
      .oneOf({"sasl_username", "sender"})
      .help("request attribute that names the account");
  SASLGUARD_OPTION(identity, strip_domain)
      .help("use only the part before @ as the account (UVSQ policyd accounts)");
  SASLGUARD_OPTION(identity, unauthenticated)
      .oneOf({"skip", "evaluate"})
      .help("requests without SASL login: skip answers DUNNO; evaluate uses the sender");

  SASLGUARD_OPTION(ldap, enabled).help("map each identity to its account through LDAP");
  SASLGUARD_OPTION(ldap, uris)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        for (const std::string_view scheme : {"ldap://", "ldaps://", "ldapi://"}) {
          if (text.starts_with(scheme)) return {};
        }
        return fail("expected ldap://host:port, ldaps://host:port or ldapi://");
      })
      .help("directory servers, tried in order");
  SASLGUARD_OPTION(ldap, bind_method)
      .oneOf({"simple", "external"})
      .help("simple: bind_dn and its password (none: anonymous); external: SASL EXTERNAL");
  SASLGUARD_OPTION(ldap, bind_dn).help("DN to bind as (simple bind)");
  SASLGUARD_OPTION(ldap, bind_password_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file whose first line is the bind password");
  SASLGUARD_OPTION(ldap, starttls).help("StartTLS on ldap:// URIs (ldaps:// is TLS anyway)");
  SASLGUARD_OPTION(ldap, ca_file)
      .help("CA certificates (PEM) the server certificate must chain to");
  SASLGUARD_OPTION(ldap, cert_file).help("client certificate (PEM), for TLS and SASL EXTERNAL");
  SASLGUARD_OPTION(ldap, key_file).help("key of the client certificate (PEM)");
  SASLGUARD_OPTION(ldap, tls_skip_verify)
      .help("accept any server certificate (tests only: it allows a man in the middle)");
  SASLGUARD_OPTION(ldap, base_dn).help("where the search starts");
  SASLGUARD_OPTION(ldap, scope).oneOf({"base", "one", "sub"}).help("search scope");
  SASLGUARD_OPTION(ldap, filter)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        if (text.find("%s") != std::string_view::npos) return {};
        return fail("expected a filter with %s where the identity goes");
      })
      .help("search filter; each %s is the identity, escaped (RFC 4515)");
  SASLGUARD_OPTION(ldap, result_attribute).help("attribute whose first value is the account");
  SASLGUARD_OPTION(ldap, timeout_ms).range(100, 60000).help("time allowed for one search");
  SASLGUARD_OPTION(ldap, pool_size)
      .range(1, 64)
      .help("searches at once (threads, each with its connection)");
  SASLGUARD_OPTION(ldap, max_queued)
      .range(1, 1000000)
      .help("searches waiting for a connection at most; more fail at once");
  SASLGUARD_OPTION(ldap, cache_ttl_s).range(0, 86400).help("how long a mapping is cached");
  SASLGUARD_OPTION(ldap, negative_cache_ttl_s)
      .range(0, 86400)
      .help("how long \"no such entry\" is cached");
  SASLGUARD_OPTION(ldap, cache_entries).range(1, 100000000).help("mappings cached at most");
  SASLGUARD_OPTION(ldap, not_found)
      .oneOf({"keep", "skip"})
      .help("no entry: keep the identity as the account, or skip the request (DUNNO)");
  SASLGUARD_OPTION(ldap, failure_action)
      .oneOf({"DUNNO", "DEFER"})
      .help("directory down or slow: DUNNO (the request is not evaluated) or DEFER");

  SASLGUARD_OPTION(lists, allow_accounts).help("accounts never evaluated (always DUNNO)");
  SASLGUARD_OPTION(lists, allow_networks)
      .checkedBy(checkNetwork)
      .help("client addresses or CIDR networks never evaluated (always DUNNO)");

  SASLGUARD_OPTION(replies, reject_text)
      .checkedBy(checkOneLine)
      .help("text sent with REJECT when a detector gives none");
  SASLGUARD_OPTION(replies, defer_text)
      .checkedBy(checkOneLine)
      .help("text sent with DEFER (also when failing closed)");
  SASLGUARD_OPTION(replies, hold_text)
      .checkedBy(checkOneLine)
      .help("text sent with HOLD; Postfix logs it with the held message");

  SASLGUARD_OPTION(registry, action)
      .oneOf(kActions)
      .help("answer for an account marked compromised");
  SASLGUARD_OPTION(registry, reply_text).checkedBy(checkOneLine).help("text sent with that answer");

  SASLGUARD_OPTION(state, backend)
      .oneOf({"embedded", "redis"})
      .help("where state is kept: embedded (this host) or redis (shared by a fleet; see [redis])");
  SASLGUARD_OPTION(state, dir)
      .checkedBy(checkAbsolutePath)
      .help("directory of the embedded database and the control socket");
  SASLGUARD_OPTION(state, flush_interval_ms)
      .range(10, 60000)
      .help(
          "pace at which counters are written behind the request path (a kill -9 loses about this "
          "much counting)");
  SASLGUARD_OPTION(state, max_accounts)
      .range(1, 1000000000)
      .help("most accounts tracked in memory at once");
  SASLGUARD_OPTION(state, idle_expiry_s)
      .range(60, 315360000)
      .help("forget an account with no activity for this long");
  SASLGUARD_OPTION(state, lmdb_map_size_mb)
      .range(16, 16777216)
      .help("largest size the embedded database may grow to, in MiB");
  SASLGUARD_OPTION(state, failure_action)
      .oneOf({"DUNNO", "DEFER"})
      .help("answer when the store fails for a request: DUNNO fails open, DEFER fails closed");

  SASLGUARD_OPTION(redis, server).checkedBy(checkHostPort).help("Redis server, when no sentinels");
  SASLGUARD_OPTION(redis, sentinels)
      .checkedBy(checkHostPort)
      .help("Sentinels (host:port) asked for the primary in turn; set: server is not used");
  SASLGUARD_OPTION(redis, master_name)
      .checkedBy(checkNotEmpty)
      .help("Sentinel's name of the primary");
  SASLGUARD_OPTION(redis, sentinel_username).help("Sentinel's ACL user; empty: none");
  SASLGUARD_OPTION(redis, sentinel_password_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file whose first line is Sentinel's password; empty: no AUTH to Sentinel");
  SASLGUARD_OPTION(redis, sentinel_timeout_ms)
      .range(10, 60000)
      .help("time to wait for each sentinel asked");
  SASLGUARD_OPTION(redis, username).help("Redis ACL user (Redis 6+); empty: the password alone");
  SASLGUARD_OPTION(redis, password_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file whose first line is the Redis password; empty: no AUTH");
  SASLGUARD_OPTION(redis, database).range(0, 1000).help("database number (SELECT)");
  SASLGUARD_OPTION(redis, pool_size)
      .range(1, 64)
      .help("connections to Redis per event loop (each policy worker thread, and one more)");
  SASLGUARD_OPTION(redis, connect_timeout_ms)
      .range(10, 60000)
      .help("TCP connect plus handshake (AUTH, SELECT, ROLE)");
  SASLGUARD_OPTION(redis, command_timeout_ms)
      .range(10, 60000)
      .help("a request's store call not answered by then fails (state.failure_action applies)");
  SASLGUARD_OPTION(redis, reconnect_min_ms)
      .range(1, 60000)
      .help("first wait before reconnecting after a failed connect");
  SASLGUARD_OPTION(redis, reconnect_max_ms).range(1, 600000).help("the wait doubles up to this");
  SASLGUARD_OPTION(redis, max_in_flight)
      .range(1, 10000000)
      .help("calls waiting on one connection at most; further calls fail at once");
  SASLGUARD_OPTION(redis, key_prefix)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        if (!text.empty() && text.find_first_of("{} \t\r\n") == std::string_view::npos) return {};
        return fail("expected a non-empty prefix without braces or white space");
      })
      .help("prefix of every key (inside the per-account hash tag)");
  SASLGUARD_OPTION(redis, registry_set)
      .checkedBy(checkNotEmpty)
      .help("set of the accounts marked compromised; SREM unblocks on every node (Abusix)");
  SASLGUARD_OPTION(redis, max_set_entries)
      .range(1, 1000000)
      .help("entries per IP or country set; the least recently seen entry makes room");
  SASLGUARD_OPTION(redis, audit_entries).range(1, 100000).help("audit entries kept per account");
  SASLGUARD_OPTION(redis, wait_replicas)
      .range(0, 100)
      .help("registry changes are acknowledged once this many replicas have them (WAIT)");
  SASLGUARD_OPTION(redis, wait_timeout_ms).range(1, 60000).help("longest WAIT for those replicas");
  SASLGUARD_OPTION(redis, registry_cache_entries)
      .range(0, 100000000)
      .help("compromise marks known locally, kept fresh through pub/sub; 0: ask Redis every time");

  SASLGUARD_OPTION(postfix, config_directory)
      .checkedBy(checkAbsolutePath)
      .help("Postfix configuration directory, passed as -c to postqueue, postsuper and postcat");
  SASLGUARD_OPTION(postfix, command_directory)
      .checkedBy(checkAbsolutePath)
      .help("directory of postqueue, postsuper and postcat");
  SASLGUARD_OPTION(postfix, command_timeout_ms)
      .range(100, 600000)
      .help("a Postfix command still running after this long is killed");
  SASLGUARD_OPTION(postfix, max_messages)
      .range(1, 10000000)
      .help("held messages listed or acted on per call at most");

  SASLGUARD_OPTION(decisions, recent)
      .range(0, 10000000)
      .help("decision records kept in memory for the log and the API");

  SASLGUARD_OPTION(eventlog, enabled).help("write one row per counted message to the event log");
  SASLGUARD_OPTION(eventlog, url)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        for (const std::string_view scheme :
             {"sqlite://", "mysql://", "mariadb://", "postgresql://", "postgres://"}) {
          if (text.starts_with(scheme)) return {};
        }
        if (text.empty()) return {};
        return fail(
            "expected sqlite:///path, mysql://user@host:port/database or "
            "postgresql://user@host:port/database");
      })
      .help("event log database; empty: sqlite file events.sqlite in state.dir");
  SASLGUARD_OPTION(eventlog, password_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file whose first line is the database password (kept out of this configuration)");
  SASLGUARD_OPTION(eventlog, table)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        const bool ok = !text.empty() && text.size() <= 64 && !(text[0] >= '0' && text[0] <= '9') &&
                        std::all_of(text.begin(), text.end(), [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                 (c >= '0' && c <= '9') || c == '_';
                        });
        if (ok) return {};
        return fail("expected an SQL table name (letters, digits and _, at most 64)");
      })
      .help("table the rows go to; UVSQ policyd's report expects events");
  SASLGUARD_OPTION(eventlog, queue_rows)
      .range(1, 10000000)
      .help("rows waiting for the database at most; further rows are dropped and counted");
  SASLGUARD_OPTION(eventlog, batch_rows)
      .range(1, 100000)
      .help("rows written in one transaction at most");
  SASLGUARD_OPTION(eventlog, flush_interval_ms)
      .range(10, 60000)
      .help("longest time a row waits before its batch is written");
  SASLGUARD_OPTION(eventlog, retention_days)
      .range(0, 36500)
      .help("rows older than this are deleted at start and daily; 0 keeps them for ever");

  SASLGUARD_OPTION(dns, servers)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        auto host = text;
        if (host.starts_with('[')) {
          const auto close = host.find(']');
          if (close == std::string_view::npos) return fail("expected [IPv6]:PORT");
          host = host.substr(1, close - 1);
        } else if (const auto colon = host.find(':');
                   colon != std::string_view::npos && host.find(':', colon + 1) == host.npos) {
          host = host.substr(0, colon);
        }
        if (parseAddress(host)) return {};
        return fail("expected an IP address, optionally with :PORT (IPv6 as [::1]:53)");
      })
      .help("DNS servers for reputation lookups, IP[:PORT]; empty: those of /etc/resolv.conf");
  SASLGUARD_OPTION(dns, timeout_ms)
      .range(50, 30000)
      .help("time to wait for an answer, per try (Postfix gives a policy server 100 s in all)");
  SASLGUARD_OPTION(dns, tries).range(1, 10).help("queries sent per lookup before it fails");
  SASLGUARD_OPTION(dns, max_ttl_s)
      .range(0, 86400)
      .help("answers are cached for their TTL, at most this long; 0 caches nothing");
  SASLGUARD_OPTION(dns, negative_ttl_s)
      .range(0, 86400)
      .help("\"not listed\" answers are cached this long at most");
  SASLGUARD_OPTION(dns, cache_entries)
      .range(1, 100000000)
      .help("answers kept in the cache at most; the oldest make room");

  SASLGUARD_OPTION(notify, hook_command)
      .help("command run on each new compromise mark, as argv (no shell), absolute path first");
  SASLGUARD_OPTION(notify, hook_timeout_s)
      .range(1, 3600)
      .help("a hook still running after this long is killed");
  SASLGUARD_OPTION(notify, hook_max_running).range(1, 256).help("hooks running at once at most");
  SASLGUARD_OPTION(notify, hook_max_queued)
      .range(1, 1000000)
      .help("hooks waiting to run at most; further marks run no hook (logged, counted)");
  SASLGUARD_OPTION(notify, mail_url)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        if (text.empty() || text.starts_with("smtp://") || text.starts_with("smtps://")) return {};
        return fail("expected smtp://host:port (STARTTLS when offered) or smtps://host:port");
      })
      .help("SMTP server for the operator e-mail on each new mark; empty: no e-mail");
  SASLGUARD_OPTION(notify, mail_require_tls)
      .help("never send the e-mail in clear text (smtp:// then requires STARTTLS)");
  SASLGUARD_OPTION(notify, mail_verify_tls).help("verify the SMTP server's certificate and name");
  SASLGUARD_OPTION(notify, mail_username).help("SMTP AUTH user name; empty: no AUTH");
  SASLGUARD_OPTION(notify, mail_password_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file whose first line is the SMTP AUTH password");
  SASLGUARD_OPTION(notify, mail_from).help("envelope and header sender of the e-mail");
  SASLGUARD_OPTION(notify, mail_to).help("recipients of the e-mail");
  SASLGUARD_OPTION(notify, mail_subject)
      .checkedBy(checkOneLine)
      .help("subject; {account} {detector} {action} {reason} {client_address} {time} {attr:NAME}");
  SASLGUARD_OPTION(notify, mail_template_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("body template with the subject's placeholders and {evidence}; empty: built in");
  SASLGUARD_OPTION(notify, mail_max_attempts)
      .range(1, 100)
      .help("delivery attempts per e-mail, with back-off from 5 s doubling up to 10 min");

  SASLGUARD_OPTION(admin, enabled).help("serve the admin HTTP API");
  SASLGUARD_OPTION(admin, listen)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
          return fail("expected host:port or [v6]:port");
        }
        const auto port = text.substr(colon + 1);
        if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
            port.size() > 5 || std::stoi(std::string(port)) > 65535) {
          return fail("expected a port number from 0 to 65535 after the last colon");
        }
        return {};
      })
      .help("host:port of the API; off loopback it refuses to start without credentials");
  SASLGUARD_OPTION(admin, tls_cert_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("PEM certificate (chain) for HTTPS; with tls_key_file");
  SASLGUARD_OPTION(admin, tls_key_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("PEM private key for HTTPS");
  SASLGUARD_OPTION(admin, basic_user).help("HTTP Basic user name; empty: no Basic authentication");
  SASLGUARD_OPTION(admin, basic_password)
      .secret()
      .help("HTTP Basic password (prefer basic_password_file)");
  SASLGUARD_OPTION(admin, basic_password_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file whose first line is the HTTP Basic password");
  SASLGUARD_OPTION(admin, bearer_tokens_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file with one bearer token per line (Authorization: Bearer TOKEN)");
  SASLGUARD_OPTION(admin, max_body_kb).range(1, 65536).help("largest request body accepted (413)");
  SASLGUARD_OPTION(admin, read_timeout_ms)
      .range(100, 3600000)
      .help("a request (or TLS handshake) not complete by then is dropped");
  SASLGUARD_OPTION(admin, write_timeout_ms)
      .range(100, 3600000)
      .help("a client that does not read its answer by then is dropped");
  SASLGUARD_OPTION(admin, idle_timeout_ms)
      .range(100, 3600000)
      .help("a kept-alive connection idle this long is closed");
  SASLGUARD_OPTION(admin, max_connections)
      .range(1, 10000)
      .help("API connections open at once; more are closed at once");
  SASLGUARD_OPTION(admin, geoip_policyd_endpoints)
      .help("serve geoip-policyd's REST endpoints (/reload, /query, /remove, ...) unchanged");
  SASLGUARD_OPTION(admin, query_records)
      .help("POST /query records the address like a policy request (geoip-policyd did)");
  SASLGUARD_OPTION(detectors.denylist, enabled).help("evaluate this detector");
  SASLGUARD_OPTION(detectors.denylist, shadow)
      .help("evaluate, log and count only (\"would have\"); never enforce");
  SASLGUARD_OPTION(detectors.denylist, action)
      .oneOf(kActions)
      .help("answer when an account, sender or network is listed");
  SASLGUARD_OPTION(detectors.denylist, reply_text)
      .checkedBy(checkOneLine)
      .help("text sent with that answer; empty uses the replies text for the action");
  SASLGUARD_OPTION(detectors.denylist, accounts).help("accounts always answered with the action");
  SASLGUARD_OPTION(detectors.denylist, senders)
      .help("envelope sender addresses always answered with the action");
  SASLGUARD_OPTION(detectors.denylist, networks)
      .checkedBy(checkNetwork)
      .help("client addresses or CIDR networks always answered with the action");

  SASLGUARD_OPTION(detectors.quota, enabled).help("evaluate this detector");
  SASLGUARD_OPTION(detectors.quota, shadow)
      .help("evaluate, log and count only (\"would have\"); never enforce, count every message");
  SASLGUARD_OPTION(detectors.quota, action)
      .oneOf(kActions)
      .help("answer from hold_factor x quota recipients on (the message is then not counted)");
  SASLGUARD_OPTION(detectors.quota, reply_text)
      .checkedBy(checkOneLine)
      .help("text sent with that answer; empty uses the replies text for the action");
  SASLGUARD_OPTION(detectors.quota, windows)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        // DIGITS UNIT ":" DIGITS, the window from 1m to 366d, the quota from 1 to 999999999.
        const auto colon = text.find(':');
        const auto number = [](std::string_view part) -> std::int64_t {
          if (part.empty() || part.size() > 9) return -1;
          std::int64_t value = 0;
          for (const char c : part) {
            if (c < '0' || c > '9') return -1;
            value = value * 10 + (c - '0');
          }
          return value;
        };
        if (colon != std::string_view::npos && colon >= 2) {
          const auto unit = std::string_view("smhd").find(text[colon - 1]);
          const std::int64_t seconds[] = {1, 60, 3600, 86400};
          const auto amount = number(text.substr(0, colon - 1));
          const auto quota = number(text.substr(colon + 1));
          if (unit != std::string_view::npos && amount > 0 && quota > 0 &&
              amount * seconds[unit] >= 60 && amount * seconds[unit] <= 366 * 86400) {
            return {};
          }
        }
        return fail(
            "expected DURATION:QUOTA such as 24h:1500 (DURATION from 1m to 366d in s, m, h or d; "
            "QUOTA from 1 to 999999999)");
      })
      .help("sliding windows and their quotas in recipients, DURATION:QUOTA (24h:1500, 1h:300)");
  SASLGUARD_OPTION(detectors.quota, hold_factor)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        const auto dot = text.find('.');
        const auto whole = text.substr(0, dot);
        const auto fraction =
            dot == std::string_view::npos ? std::string_view("0") : text.substr(dot + 1);
        const auto digits = [](std::string_view part) {
          return !part.empty() &&
                 std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
        };
        if (digits(whole) && digits(fraction) && fraction.size() <= 3 && whole.size() <= 6 &&
            (whole.find_first_not_of('0') != std::string_view::npos)) {
          return {};
        }
        return fail("expected a number of at least 1 such as 2 or 1.5 (a string)");
      })
      .help("REJECT from hold_factor x quota recipients on, HOLD from the quota on");
  SASLGUARD_OPTION(detectors.quota, count_at)
      .oneOf({"end-of-message", "rcpt"})
      .help("end-of-message: recipient_count at END-OF-MESSAGE or DATA; rcpt: one per RCPT");
  SASLGUARD_OPTION(detectors.quota, hold_text)
      .checkedBy(checkOneLine)
      .help("text sent with HOLD from the quota on");
  SASLGUARD_OPTION(detectors.quota, accounts)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        const auto colon = text.rfind(':');
        if (colon != std::string_view::npos && colon > 0 && colon + 1 < text.size() &&
            text.size() - colon - 1 <= 9 &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(colon) + 1, text.end(),
                        [](char c) { return c >= '0' && c <= '9'; }) &&
            text.substr(colon + 1).find_first_not_of('0') != std::string_view::npos) {
          return {};
        }
        return fail("expected account:QUOTA or @domain:QUOTA, QUOTA from 1 to 999999999");
      })
      .help("quotas (for the first window) of accounts or @domains, account:QUOTA");
  SASLGUARD_OPTION(detectors.quota, overrides_file)
      .help("more quotas, one \"account-or-@domain QUOTA\" per line, # comments; read on reload");
  SASLGUARD_OPTION(detectors.quota, whitelist_accounts)
      .help("accounts not counted during office_hours (counted and limited outside them)");
  SASLGUARD_OPTION(detectors.quota, whitelist_senders)
      .help("envelope sender addresses not counted during office_hours");
  SASLGUARD_OPTION(detectors.quota, whitelist_networks)
      .checkedBy(checkNetwork)
      .help("client addresses or CIDR networks not counted during office_hours");
  SASLGUARD_OPTION(detectors.quota, office_hours)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        if (text == "always" || text == "never" ||
            (text.find(' ') != std::string_view::npos &&
             text.find(':') != std::string_view::npos)) {
          return {};
        }
        return fail("expected DAYS HH:MM-HH:MM such as Mon-Fri 07:00-19:59, always or never");
      })
      .help("when the whitelist applies, DAYS HH:MM-HH:MM (end minute included); ; separates more");
  SASLGUARD_OPTION(detectors.quota, time_zone)
      .checkedBy(+[](std::string_view text) -> Result<void> {
        if (!text.starts_with('/') && text.find("..") == std::string_view::npos &&
            text.find_first_of(" \t") == std::string_view::npos) {
          return {};
        }
        return fail("expected an IANA time zone name such as Europe/Paris, or empty");
      })
      .help("time zone of office_hours, an IANA name (Europe/Paris); empty: the system's");
  SASLGUARD_OPTION(detectors.quota, blacklist_accounts)
      .help("accounts answered blacklist_action at any time, not counted");
  SASLGUARD_OPTION(detectors.quota, blacklist_senders)
      .help("envelope sender addresses answered blacklist_action at any time, not counted");
  SASLGUARD_OPTION(detectors.quota, blacklist_networks)
      .checkedBy(checkNetwork)
      .help("client addresses or CIDR networks answered blacklist_action at any time");
  SASLGUARD_OPTION(detectors.quota, blacklist_action)
      .oneOf(kActions)
      .help("answer for a blacklisted account, sender or client");
  SASLGUARD_OPTION(detectors.quota, blacklist_text)
      .checkedBy(checkOneLine)
      .help("text sent with blacklist_action");
  SASLGUARD_OPTION(detectors.quota, mark_on)
      .oneOf({"none", "hold", "reject"})
      .help("mark the account compromised from this tier on (then registry.action answers)");
  SASLGUARD_OPTION(detectors.quota, log_counts)
      .help("log UVSQ's user/sender/ip/recipients/total line for every message at info, not debug");

  SASLGUARD_OPTION(detectors.geo, enabled).help("evaluate this detector");
  SASLGUARD_OPTION(detectors.geo, shadow)
      .help("evaluate, log and count only (\"would have\"); never enforce, never mark");
  SASLGUARD_OPTION(detectors.geo, action)
      .oneOf(kActions)
      .help("answer when an account is over a limit");
  SASLGUARD_OPTION(detectors.geo, reply_text)
      .checkedBy(checkOneLine)
      .help("text sent with that answer (geoip-policyd's by default)");
  SASLGUARD_OPTION(detectors.geo, database)
      .checkedBy(checkAbsolutePath)
      .help("MaxMind DB (GeoLite2/GeoIP2 City or Country, or DB-IP in that format)");
  SASLGUARD_OPTION(detectors.geo, missing_database)
      .oneOf({"fail", "disable"})
      .help("database unreadable at start: fail (exit) or disable (warn, run without geo)");
  SASLGUARD_OPTION(detectors.geo, database_check_interval_s)
      .range(1, 86400)
      .help("how often the database file is checked; a new one is swapped in, a bad one ignored");
  SASLGUARD_OPTION(detectors.geo, max_ips)
      .range(0, 1000000)
      .help("distinct foreign client IPs within ttl_s; one more fires");
  SASLGUARD_OPTION(detectors.geo, max_countries)
      .range(0, 1000)
      .help("distinct foreign countries within ttl_s; one more fires");
  SASLGUARD_OPTION(detectors.geo, max_home_ips)
      .range(0, 1000000)
      .help("distinct client IPs in home countries within ttl_s; one more fires");
  SASLGUARD_OPTION(detectors.geo, max_home_countries)
      .range(0, 1000)
      .help("distinct home countries within ttl_s; one more fires");
  SASLGUARD_OPTION(detectors.geo, home_countries)
      .checkedBy(checkCountryCode)
      .help("ISO 3166 codes (DE, FR) counted apart with the home limits");
  SASLGUARD_OPTION(detectors.geo, trusted_countries)
      .checkedBy(checkCountryCode)
      .help("when set, the only countries allowed (any other fires); these are not counted");
  SASLGUARD_OPTION(detectors.geo, trusted_networks)
      .checkedBy(checkNetwork)
      .help("when set, the only client networks allowed (any other fires); not counted");
  SASLGUARD_OPTION(detectors.geo, ignore_networks)
      .checkedBy(checkNetwork)
      .help("client networks this detector never looks at");
  SASLGUARD_OPTION(detectors.geo, ttl_s)
      .range(1, 31536000)
      .help("an IP or country counts until this long after it was last seen");
  SASLGUARD_OPTION(detectors.geo, ipv6_prefix)
      .range(1, 128)
      .help("IPv6 clients count per prefix of this length (privacy addresses are one client)");
  SASLGUARD_OPTION(detectors.geo, block_permanent)
      .help("firing marks the account compromised until an operator clears it");
  SASLGUARD_OPTION(detectors.geo, custom_settings_file)
      .help("geoip-policyd's custom settings JSON (per-account limits, lists); read on reload");

  SASLGUARD_OPTION(detectors.reputation, enabled).help("evaluate this detector");
  SASLGUARD_OPTION(detectors.reputation, shadow)
      .help("look up, log and count only (\"would have\"); never enforce, never mark");
  SASLGUARD_OPTION(detectors.reputation, action)
      .oneOf({"REJECT", "HOLD", "DEFER", "LOG"})
      .help("answer on a listing (LOG: mark and log, answer DUNNO); a zone may override it");
  SASLGUARD_OPTION(detectors.reputation, reply_text)
      .checkedBy(checkOneLine)
      .help("text sent with that answer; empty uses the replies text for the action");
  SASLGUARD_OPTION(detectors.reputation, preset)
      .oneOf({"none", "abusix"})
      .help("abusix: authbl.mail.abusix.zone and authbl-rcpt.mail.abusix.zone (needs api_key)");
  SASLGUARD_OPTION(detectors.reputation, api_key)
      .secret()
      .help("the key label of keyed zones (Abusix Mail Intelligence API key)");
  SASLGUARD_OPTION(detectors.reputation, api_key_file)
      .checkedBy(checkOptionalAbsolutePath)
      .help("file whose first line is the API key (instead of api_key)");
  SASLGUARD_OPTION(detectors.reputation, zones)
      .checkedBy(checkZoneSpec)
      .help("more zones: KIND ZONE [key] [listed=CODES] [action=ACTION] [test=ITEM]");
  SASLGUARD_OPTION(detectors.reputation, self_test)
      .oneOf({"fail", "warn", "off"})
      .help("look the zones' test points up at start and reload; fail: refuse to run if unlisted");
  SASLGUARD_OPTION(detectors.reputation, dns_failure_action)
      .oneOf({"DUNNO", "DEFER"})
      .help("answer when a lookup times out or fails: DUNNO (fail open) or DEFER (fail closed)");
  SASLGUARD_OPTION(detectors.reputation, mark_expiry_s)
      .range(0, 315360000)
      .help("a mark expires this long after the listing; 0: it stays until cleared");

  return std::move(table).finish();
}

#undef SASLGUARD_OPTION

// A malformed table is a programming error: abort at the first load, in every test.
std::vector<Option> TableBuilder::finish() && {
  const Settings defaults;
  std::unordered_set<std::string> names;
  std::unordered_set<std::string> flags;
  for (std::size_t i = 0; i < table_.size(); ++i) {
    const auto& option = table_[i];
    const auto what = "option table: " + option.name() + ": ";
    if (!names.insert(option.name()).second) fatal(what + "defined twice");
    if (!names.insert(option.envName()).second) fatal(what + "environment name collides");
    if (!flags.insert(option.flagName()).second) fatal(what + "flag collides");
    for (const auto& alias : option.flag_aliases) {
      if (!flags.insert(alias).second) fatal(what + "flag alias collides");
    }
    if (option.help.empty()) fatal(what + "no help text");
    sectionHelp(option.section);  // aborts when the section has no description
    const auto value = option.read(defaults);
    if (option.type == OptionType::kInt) {
      if (option.max > intMax_[i] || option.min > option.max) fatal(what + "bad range");
      if (!checkInt(option, std::get<std::int64_t>(value))) fatal(what + "default out of range");
    }
    if (option.type == OptionType::kEnum || option.type == OptionType::kString) {
      const auto& text = std::get<std::string>(value);
      auto checked = checkString(option, text);
      if (!checked || *checked != text) fatal(what + "default not accepted");
    }
    if (option.type == OptionType::kStringList) {
      for (const auto& entry : std::get<std::vector<std::string>>(value)) {
        if (!checkString(option, entry)) fatal(what + "default entry not accepted");
      }
    }
  }
  return std::move(table_);
}

std::string upperWithUnderscores(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c == '.' || c == '-') c = '_';
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string quoted(std::string_view text) {
  return "\"" + jsonEscape(text) + "\"";
}

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

Result<bool> parseBool(std::string_view text) {
  const auto word = toLowerAscii(trim(text));
  if (word == "true" || word == "yes" || word == "on" || word == "1") return true;
  if (word == "false" || word == "no" || word == "off" || word == "0") return false;
  return fail("expected true or false (or yes/no, on/off, 1/0)");
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
// neighbouring characters ("levle" -> "level") each count as one edit.
std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string Option::name() const {
  return section + "." + key;
}

std::string Option::envName() const {
  return std::string(kEnvPrefix) + upperWithUnderscores(name());
}

std::string Option::flagName() const {
  std::string out = name();
  for (auto& c : out) {
    if (c == '.' || c == '_') c = '-';
  }
  return out;
}

std::string Option::typeText() const {
  switch (type) {
    case OptionType::kString:
      return "string";
    case OptionType::kBool:
      return "boolean";
    case OptionType::kInt:
      return "integer " + std::to_string(min) + ".." + std::to_string(max);
    case OptionType::kStringList:
      return "list of strings";
    case OptionType::kEnum:
      return "one of: " + joined(allowed, ", ");
  }
  fatal("Option::typeText: unknown type");
}

const std::vector<Option>& options() {
  static const std::vector<Option> table = buildTable();
  return table;
}

const std::vector<std::string>& sections() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& option : options()) {
      if (std::find(out.begin(), out.end(), option.section) == out.end()) {
        out.push_back(option.section);
      }
    }
    return out;
  }();
  return names;
}

std::string sectionHelp(std::string_view section) {
  static constexpr std::pair<std::string_view, std::string_view> kHelp[] = {
      {"server", "Listening sockets, connections and privileges."},
      {"protocol", "Limits on what Postfix may send in one policy request."},
      {"log", "Where the daemon logs and how much."},
      {"identity", "Which account a request belongs to."},
      {"ldap",
       "Maps each identity (a login or an alias) to its account through LDAP, before anything "
       "else: every detector, the registry and the API then see one account per person."},
      {"lists", "Requests that are never evaluated."},
      {"replies", "Text sent to Postfix with each action, enhanced status code first."},
      {"registry", "Accounts marked compromised, answered before any detector runs."},
      {"state", "Durable state: counters, compromise marks, recent activity."},
      {"redis",
       "Redis (optionally with Sentinel) as the state shared by several saslguard instances, "
       "used when state.backend = \"redis\". See docs/redis.md."},
      {"postfix",
       "The local Postfix whose hold queue saslguard accounts held|release|purge and the API "
       "act on."},
      {"decisions", "Recent decisions: what was answered, to whom and why."},
      {"eventlog",
       "SQL event log (SQLite, MariaDB or PostgreSQL): one row per counted message, in UVSQ "
       "policyd's events table layout, for saslguard report top. Written off the request path."},
      {"dns", "The resolver for reputation lookups (c-ares) and its answer cache."},
      {"notify",
       "What runs off the request path when an account is newly marked compromised: a hook "
       "command (never through a shell) and an e-mail to the operator."},
      {"admin",
       "The admin HTTP API: accounts, decisions, settings, health, Prometheus metrics and "
       "geoip-policyd's REST endpoints. See docs/admin-api.md."},
      {"detectors.denylist",
       "Accounts, senders and networks always answered with the action. Like every detector it "
       "has enabled, shadow, action and reply_text."},
      {"detectors.quota",
       "Recipients per account over sliding windows (UVSQ policyd): HOLD from the quota on, the "
       "action (REJECT) from hold_factor x quota on. See docs/detectors/quota.md."},
      {"detectors.geo",
       "Distinct client IPs and countries per account (geoip-policyd): more than the limits "
       "within ttl_s fires. See docs/detectors/geo.md."},
      {"detectors.reputation",
       "Client address and hashed recipient looked up in DNS reputation zones (Abusix AUTH "
       "policy daemon); a listing marks the account compromised. See "
       "docs/detectors/reputation.md."},
  };
  for (const auto& [name, help] : kHelp) {
    if (name == section) return std::string(help);
  }
  fatal("sectionHelp: no description for section " + std::string(section));
}

const Option* findOption(std::string_view name) {
  // Compared in place: the loader looks up every key of a file, and each lookup walks the list.
  for (const auto& option : options()) {
    if (name.size() == option.section.size() + 1 + option.key.size() &&
        name.starts_with(option.section) && name[option.section.size()] == '.' &&
        name.ends_with(option.key)) {
      return &option;
    }
  }
  return nullptr;
}

const Option* findOptionByEnv(std::string_view variable) {
  for (const auto& option : options()) {
    if (option.envName() == variable) return &option;
  }
  return nullptr;
}

std::string shownInError(const Option& option, std::string_view text) {
  return option.secret ? std::string(kSecretMask) : quoted(text);
}

Result<std::string> checkString(const Option& option, std::string_view text) {
  if (option.type == OptionType::kEnum) {
    for (const auto& allowed : option.allowed) {
      if (equalsIgnoreCase(allowed, text)) return allowed;
    }
    return fail("expected one of " + joined(option.allowed, ", ") + ", got " +
                shownInError(option, text));
  }
  if (option.check) {
    if (auto checked = option.check(text); !checked) {
      return fail(checked.error().message + ", got " + shownInError(option, text));
    }
  }
  return std::string(text);
}

Result<std::int64_t> checkInt(const Option& option, std::int64_t value) {
  if (value < option.min || value > option.max) {
    return fail("expected an integer from " + std::to_string(option.min) + " to " +
                std::to_string(option.max) + ", got " +
                (option.secret ? std::string(kSecretMask) : std::to_string(value)));
  }
  return value;
}

tl::expected<Value, std::vector<std::string>> parseText(const Option& option,
                                                        std::string_view text) {
  using Errors = std::vector<std::string>;
  switch (option.type) {
    case OptionType::kBool: {
      auto value = parseBool(text);
      if (!value)
        return tl::unexpected(
            Errors{value.error().message + ", got " + shownInError(option, text)});
      return Value(*value);
    }
    case OptionType::kInt: {
      const auto digits = trim(text);
      std::int64_t value = 0;
      const auto* end = digits.data() + digits.size();
      auto [stop, ec] = std::from_chars(digits.data(), end, value);
      if (digits.empty() || ec != std::errc() || stop != end) {
        return tl::unexpected(Errors{"expected an integer from " + std::to_string(option.min) +
                                     " to " + std::to_string(option.max) + ", got " +
                                     shownInError(option, text)});
      }
      auto checked = checkInt(option, value);
      if (!checked) return tl::unexpected(Errors{checked.error().message});
      return Value(*checked);
    }
    case OptionType::kString:
    case OptionType::kEnum: {
      auto checked = checkString(option, option.type == OptionType::kEnum ? trim(text) : text);
      if (!checked) return tl::unexpected(Errors{checked.error().message});
      return Value(std::move(*checked));
    }
    case OptionType::kStringList: {
      std::vector<std::string> entries;
      Errors errors;
      for (auto part : split(text, ',')) {
        part = trim(part);
        if (part.empty()) continue;
        if (auto checked = checkString(option, part)) {
          entries.push_back(std::move(*checked));
        } else {
          errors.push_back(checked.error().message);
        }
      }
      if (!errors.empty()) return tl::unexpected(std::move(errors));
      return Value(std::move(entries));
    }
  }
  fatal("parseText: unknown option type");
}

std::string formatValue(const Option& option, const Value& value) {
  // An empty secret has nothing to hide, and shows that none is set.
  const auto* text = std::get_if<std::string>(&value);
  if (option.secret && !(text != nullptr && text->empty())) return quoted(kSecretMask);
  struct Formatter {
    std::string operator()(const std::string& text) const { return quoted(text); }
    std::string operator()(bool flag) const { return flag ? "true" : "false"; }
    std::string operator()(std::int64_t number) const { return std::to_string(number); }
    std::string operator()(const std::vector<std::string>& entries) const {
      std::vector<std::string> items;
      for (const auto& entry : entries) items.push_back(quoted(entry));
      return "[" + joined(items, ", ") + "]";
    }
  };
  return std::visit(Formatter{}, value);
}

std::string formatValue(const Option& option, const Settings& settings) {
  return formatValue(option, option.read(settings));
}

std::string formatDefault(const Option& option) {
  return formatValue(option, Settings{});
}

std::vector<const Option*> changedOptions(const Settings& before, const Settings& after) {
  std::vector<const Option*> changed;
  for (const auto& option : options()) {
    if (option.read(before) != option.read(after)) changed.push_back(&option);
  }
  return changed;
}

std::string closestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  const auto lowered = toLowerAscii(word);
  std::string best;
  // A third of the word, at least 1 and at most 3 edits (exclusive bound below).
  std::size_t bestDistance = std::clamp<std::size_t>(word.size() / 3, 1, 3) + 1;
  for (const auto& candidate : candidates) {
    // The distance is at least the difference in length: a long misspelling (or a fuzzed key)
    // costs nothing against candidates it cannot match.
    const auto lengthGap = lowered.size() > candidate.size() ? lowered.size() - candidate.size()
                                                             : candidate.size() - lowered.size();
    if (lengthGap >= bestDistance) continue;
    const auto distance = editDistance(lowered, toLowerAscii(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

}  // namespace saslguard::config
