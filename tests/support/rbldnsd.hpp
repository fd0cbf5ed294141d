// rbldnsd.hpp — DNS servers for tests: the real rbldnsd (a DNSBL server) on a free loopback UDP
// port serving zone files from a temporary directory, stopped by the PID it saved; a fake server
// answering every query with one RCODE (SERVFAIL, REFUSED), and a port that never answers.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

namespace saslguard::testing {

struct RbldnsdZone {
  std::string zone;     // "testkey.authbl.test"
  std::string type;     // ip4set, ip6trie, ip6tset, dnset, ... (rbldnsd(8))
  std::string file;     // file name inside the server's directory
  std::string content;  // the data file ("$TTL 2", ":127.0.0.4:", "127.0.0.2", ...)
};

struct DnsReply {
  int rcode = 0;                         // 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED
  std::vector<std::uint32_t> addresses;  // A records, host byte order
};

// One blocking A query over UDP to 127.0.0.1:port; nullopt when nothing answers in time.
std::optional<DnsReply> queryA(unsigned short port, const std::string& name,
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

// 127.0.0.4 -> 0x7f000004.
std::uint32_t ipv4(const std::string& dotted);

class Rbldnsd {
 public:
  static constexpr const char* kBinary = "/usr/sbin/rbldnsd";

  // Writes the zone files and starts rbldnsd; returns once it answers. Throws when it cannot.
  // With `also_ipv6` it listens on [::1] too, on the same port.
  explicit Rbldnsd(std::vector<RbldnsdZone> zones, bool also_ipv6 = false);
  ~Rbldnsd();
  Rbldnsd(const Rbldnsd&) = delete;
  Rbldnsd& operator=(const Rbldnsd&) = delete;

  unsigned short port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string serverIpv6() const { return "[::1]:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  std::string log() const;

  // Replaces a zone file (written aside, renamed over, with a newer mtime so rbldnsd sees the
  // change) and sends SIGHUP. The reload is asynchronous: follow with waitForAnswer().
  void rewrite(const std::string& file, const std::string& content);
  // Waits until `name` answers with `address` (nullopt: NXDOMAIN). False after the timeout.
  bool waitForAnswer(const std::string& name, std::optional<std::uint32_t> address,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  // Fault injection: stops the server by its PID (SIGTERM, or reaps it after the caller's
  // SIGKILL), then starts it again on the same port; returns once it answers. Throws when it
  // cannot.
  void restart();

 private:
  bool start(const std::vector<RbldnsdZone>& zones, unsigned short port = 0);
  void stop();

  TempDir dir_;
  std::vector<RbldnsdZone> zones_;
  bool also_ipv6_ = false;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

// A UDP port on 127.0.0.1 that answers every DNS query with `rcode` and no records (the query
// echoed with QR set), from its own thread. rbldnsd cannot be made to SERVFAIL.
class FixedRcodeDnsServer {
 public:
  explicit FixedRcodeDnsServer(int rcode);
  ~FixedRcodeDnsServer();
  FixedRcodeDnsServer(const FixedRcodeDnsServer&) = delete;
  FixedRcodeDnsServer& operator=(const FixedRcodeDnsServer&) = delete;

  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string serverIpv6() const { return "[::1]:" + std::to_string(port_); }
  int queriesAnswered() const { return answered_.load(); }

 private:
  void serve();

  int fd_ = -1;
  unsigned short port_ = 0;
  int rcode_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

// A bound UDP port on 127.0.0.1 that reads nothing and answers nothing (no ICMP either, since
// the port is open): every query to it times out.
class SilentUdpPort {
 public:
  SilentUdpPort();
  ~SilentUdpPort();
  SilentUdpPort(const SilentUdpPort&) = delete;
  SilentUdpPort& operator=(const SilentUdpPort&) = delete;
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string serverIpv6() const { return "[::1]:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

}  // namespace saslguard::testing
