// ldap_connection.hpp — one libldap connection as a pool worker owns it: opened on first use
// (URIs in order, TLS, StartTLS, bind), one synchronous search at a time, dropped and opened
// afresh after a connection error, with a growing pause between failed attempts to connect.
// Not thread-safe: one worker, one connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "enrich/ldap.hpp"

typedef struct ldap LDAP;

namespace saslguard::enrich {

// options.filter with every %s replaced by the escaped identity.
std::string ldapFilterFor(const std::string& filter_template, std::string_view identity);

class LdapConnection {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  // After a failed attempt to connect, lookups fail at once for this long, doubling on every
  // further failure up to kMaxBackoff: a server that is down is not asked once per request, and
  // one that does not answer connects (LDAP_OPT_NETWORK_TIMEOUT) do not hold a worker each time.
  static constexpr std::chrono::milliseconds kFirstBackoff{50};
  static constexpr std::chrono::milliseconds kMaxBackoff{1000};

  // `pool_connects`, shared by a pool's connections, counts their successful connects: once one
  // of them is connected again, the others end their backoff too instead of failing lookups
  // until theirs runs out.
  explicit LdapConnection(const LdapOptions& options,
                          std::atomic<std::uint64_t>* pool_connects = nullptr)
      : options_(options), pool_connects_(pool_connects) {}
  ~LdapConnection() { close(); }
  LdapConnection(const LdapConnection&) = delete;
  LdapConnection& operator=(const LdapConnection&) = delete;

  // Searches for `identity`, giving up at `deadline` (connect, bind and search together). A lost
  // connection is retried once on a fresh one while time is left, so a restarted server or the
  // next URI takes over.
  LdapAnswer lookUp(std::string_view identity, Deadline deadline);
  LdapAnswer lookUp(std::string_view identity) {
    return lookUp(identity, std::chrono::steady_clock::now() + options_.timeout);
  }
  bool connected() const { return handle_ != nullptr; }
  void close();

 private:
  struct Failure {
    int code;             // libldap's result code
    std::string message;  // fit for a log line; never the password
  };
  template <class T>
  using Outcome = tl::expected<T, Failure>;

  Outcome<bool> open(Deadline deadline);
  Outcome<bool> openUri(std::size_t index, Deadline deadline);
  Outcome<LdapAnswer> search(const std::string& filter, Deadline deadline);
  Failure failure(int code, const std::string& what) const;
  // Starts or doubles the pause before the next attempt to connect.
  void backOff(const std::string& error);

  const LdapOptions& options_;
  LDAP* handle_ = nullptr;
  std::size_t first_uri_ = 0;  // where open() starts: after the URI that last timed out
  std::size_t open_uri_ = 0;   // the URI handle_ is connected to
  // Backoff after failed connects: no attempt before retry_at_; backoff_ is zero once connected.
  Deadline retry_at_{};
  std::chrono::milliseconds backoff_{0};
  std::atomic<std::uint64_t>* pool_connects_;
  std::uint64_t pool_connects_seen_ = 0;  // *pool_connects_ when the backoff started
  std::string last_connect_error_;
};

}  // namespace saslguard::enrich
