// ldap_connection.hpp — one libldap connection as a pool worker owns it: opened on first use
// (URIs in order, TLS, StartTLS, bind), one synchronous search at a time, dropped and opened
// afresh after a connection error. Not thread-safe: one worker, one connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "enrich/ldap.hpp"

typedef struct ldap LDAP;

namespace saslguard::enrich {

// options.filter with every %s replaced by the escaped identity.
std::string ldapFilterFor(const std::string& filter_template, std::string_view identity);

class LdapConnection {
 public:
  explicit LdapConnection(const LdapOptions& options) : options_(options) {}
  ~LdapConnection() { close(); }
  LdapConnection(const LdapConnection&) = delete;
  LdapConnection& operator=(const LdapConnection&) = delete;

  // Searches for `identity`. A lost connection is retried once on a fresh one while the
  // options' timeout has not passed, so a restarted server or the next URI takes over.
  LdapAnswer lookUp(std::string_view identity);
  bool connected() const { return handle_ != nullptr; }
  void close();

 private:
  struct Failure {
    int code;             // libldap's result code
    std::string message;  // fit for a log line; never the password
  };
  template <class T>
  using Outcome = tl::expected<T, Failure>;
  using Deadline = std::chrono::steady_clock::time_point;

  Outcome<bool> open(Deadline deadline);
  Outcome<bool> openUri(std::size_t index);
  Outcome<LdapAnswer> search(const std::string& filter);
  Failure failure(int code, const std::string& what) const;

  const LdapOptions& options_;
  LDAP* handle_ = nullptr;
  std::size_t first_uri_ = 0;  // where open() starts: after the URI that last timed out
  std::size_t open_uri_ = 0;   // the URI handle_ is connected to
};

}  // namespace saslguard::enrich
