// slapd.hpp — a throwaway OpenLDAP server for tests: slapd.conf and an mdb database in a
// temporary directory, loaded with slapadd, on free loopback ports (ldap://, optionally ldaps://
// with a self-signed CA made by openssl, and ldapi://); stopped, paused and restarted by its PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "support/temp_dir.hpp"

namespace saslguard::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, closed).
unsigned short freeTcpPort();

struct SlapdOptions {
  std::string ldif;    // entries under dc=example,dc=test; empty: Slapd::sampleLdif()
  bool tls = false;    // certificates for StartTLS, plus an ldaps:// listener
  bool ldapi = false;  // an ldapi:// socket in the directory (SASL EXTERNAL by peer credentials)
};

class Slapd {
 public:
  static constexpr const char* kBinary = "/usr/sbin/slapd";
  static constexpr const char* kSuffix = "dc=example,dc=test";
  static constexpr const char* kRootDn = "cn=admin,dc=example,dc=test";
  static constexpr const char* kRootPassword = "secret";

  // People under ou=people: alice (aliases alice.alias@ and sales@example.test), bob, Carol
  // (upper-case uid), jürgen (UTF-8 uid), an entry whose uid holds * ( ) \ and two entries sharing
  // the alias team@example.test.
  static std::string sampleLdif();

  // Writes the configuration, loads the LDIF and starts slapd; returns once it accepts
  // connections. Throws when it cannot.
  explicit Slapd(SlapdOptions options = {});
  ~Slapd();
  Slapd(const Slapd&) = delete;
  Slapd& operator=(const Slapd&) = delete;

  unsigned short port() const { return port_; }
  std::string uri() const { return "ldap://127.0.0.1:" + std::to_string(port_); }
  std::string ldapsUri() const { return "ldaps://127.0.0.1:" + std::to_string(tls_port_); }
  std::string ldapiUri() const;
  std::string caFile() const { return (dir_ / "ca.pem").string(); }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  std::string log() const;

  // SIGTERM, then waits (SIGKILL after 10 s). The database stays for start().
  void stop();
  // Starts again on the same ports; returns once it accepts connections.
  void start();
  // SIGSTOP: connections are accepted by the kernel but nothing is answered. resume() is SIGCONT.
  void pause();
  void resume();

 private:
  void writeCertificates();
  void writeConfiguration();
  bool launch();  // false when slapd exited (a port was taken)
  bool waitUntilAnswering(std::chrono::milliseconds timeout);

  TempDir dir_;
  SlapdOptions options_;
  pid_t pid_ = -1;
  bool paused_ = false;
  unsigned short port_ = 0;
  unsigned short tls_port_ = 0;
};

}  // namespace saslguard::testing
