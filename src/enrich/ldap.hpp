// ldap.hpp — maps an identity (a login or an alias address) to its account through an LDAP
// directory (OpenLDAP client library): searches run on a bounded pool of worker threads, each
// with its own connection (failover across URIs, simple bind or SASL EXTERNAL, StartTLS or
// ldaps), so the event loop never blocks; answers are cached with a TTL, negative ones too.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace saslguard::enrich {

struct LdapOptions {
  // "ldap://127.0.0.1:389", "ldaps://ldap.example.org", "ldapi://%2Frun%2Fslapd%2Fldapi";
  // tried in order (after one timed out, new connections start at the next one).
  std::vector<std::string> uris;
  // simple (bind_dn/bind_password; empty dn: anonymous) | external (SASL EXTERNAL: the TLS client
  // certificate, or the peer credentials on ldapi://).
  std::string bind_method = "simple";
  std::string bind_dn;
  std::string bind_password;  // never logged
  bool starttls = false;      // on ldap:// URIs; ldaps:// is TLS from the start
  std::string ca_file;        // trust these CAs (PEM) for TLS
  std::string cert_file;      // client certificate (PEM) for TLS and SASL EXTERNAL
  std::string key_file;
  bool tls_skip_verify = false;  // explicit: accept any server certificate
  std::string base_dn;
  std::string scope = "sub";                                         // base | one | sub
  std::string filter = "(|(uid=%s)(mail=%s)(mailLocalAddress=%s))";  // %s: escaped identity
  std::string result_attribute = "uid";  // its first value is the account
  // Per mapping, all told: waiting for a free worker, connecting, binding and searching.
  std::chrono::milliseconds timeout{3000};
  std::size_t pool_size = 4;      // worker threads = connections
  std::size_t max_queued = 1000;  // searches waiting for a worker; more fail at once
  std::chrono::seconds cache_ttl{300};
  std::chrono::seconds negative_cache_ttl{60};
  std::size_t cache_entries = 100000;  // 0: no cache
  // The time cache entries age by; empty means std::chrono::steady_clock::now. Tests inject one
  // to expire entries without sleeping.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

enum class LdapStatus {
  kMapped,    // found: `account` is the first value of result_attribute (lower-cased)
  kNotFound,  // no entry (or no such object, or no such attribute)
  kFailed,    // server down, timeout, bind refused, TLS error, queue full
};

struct LdapAnswer {
  LdapStatus status = LdapStatus::kFailed;
  std::string account;
  bool from_cache = false;
  std::string error;  // kFailed: what went wrong, fit for a log line (no password)
};

class LdapMapper {
 public:
  // Fails when the options are unusable (no URI, bad scope, filter without %s, unreadable CA or
  // certificate files); does not connect yet.
  static Result<std::shared_ptr<LdapMapper>> create(LdapOptions options);
  virtual ~LdapMapper() = default;

  // A fresh cached answer for `identity` (lower-cased by the caller), if any; no blocking.
  virtual std::optional<LdapAnswer> cached(std::string_view identity) = 0;
  // Maps `identity`: from the cache, else on the pool; completes on the awaiting coroutine's
  // executor within about `timeout` (the queue wait included), never hangs. While the server
  // is unreachable each worker waits a growing pause (up to a second) between attempts to
  // connect, failing lookups at once meanwhile; it reconnects by itself.
  virtual boost::asio::awaitable<LdapAnswer> map(std::string identity) = 0;
  // Fails what is queued, waits for the workers, closes the connections. Idempotent.
  virtual void stop() = 0;
  // Searches waiting for a worker (the metrics' queue depth gauge).
  virtual std::size_t queued() = 0;
};

// RFC 4515 escaping of a filter assertion value: * ( ) \ NUL and bytes >= 0x80 as \XX.
std::string escapeFilterValue(std::string_view value);

}  // namespace saslguard::enrich
