// redis.hpp — throwaway Redis servers for tests: redis-server (optionally a replica of another)
// and redis-sentinel, in the foreground on free loopback ports in a temporary directory; stopped,
// killed, paused (SIGSTOP) and restarted by their PIDs, never by name.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace saslguard::testing {

// One command through hiredis' blocking API to 127.0.0.1:port, the reply as text: "PONG",
// "(integer) 3", "(nil)", "(error) NOAUTH ...", arrays as "[a, b]". nullopt: no reply in time.
std::optional<std::string> redisQuery(unsigned short port, const std::vector<std::string>& args,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(1));

struct RedisServerOptions {
  std::string password;                      // --requirepass (the default user's password)
  std::optional<unsigned short> replica_of;  // a replica of 127.0.0.1:<port>
  std::string primary_password;              // --masterauth, for a replica

  static RedisServerOptions withPassword(std::string password) {
    RedisServerOptions options;
    options.password = std::move(password);
    return options;
  }
  static RedisServerOptions replicaOf(unsigned short primary_port) {
    RedisServerOptions options;
    options.replica_of = primary_port;
    return options;
  }
};

class RedisServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";

  // Starts redis-server (no persistence) and returns once it answers. Throws when it cannot.
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  unsigned short port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  std::string log() const;

  // A command as the default user (authenticated with the password when there is one).
  std::optional<std::string> query(const std::vector<std::string>& args) const;
  // Several commands on one connection; the last one's reply.
  std::optional<std::string> querySequence(
      const std::vector<std::vector<std::string>>& commands) const;

  void stop();   // SIGTERM, then waits (SIGKILL after 5 s)
  void kill();   // SIGKILL: a crash
  void start();  // again on the same port; returns once it answers
  // SIGSTOP: the kernel still accepts connections, nothing is answered. Returns once every
  // thread is stopped. resume() is SIGCONT.
  void pause();
  void resume();

  // Waits until `count` replicas acknowledge this primary's writes (WAIT): a replica reports
  // its link up before the primary counts it as online.
  bool waitForReplicaAcks(int count,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Waits until INFO <section> has the line `line` ("role:master", "master_link_status:up").
  bool waitForInfo(const std::string& section, const std::string& line,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  bool launch();  // false when the server exited (its port was taken)

  TempDir dir_;
  RedisServerOptions options_;
  pid_t pid_ = -1;
  bool paused_ = false;
  unsigned short port_ = 0;
};

class RedisSentinelServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-sentinel";

  // Monitors 127.0.0.1:<primary_port> as `master_name` with quorum 1, down-after 1000 ms and
  // failover-timeout 3000 ms (environment.md 2.1). Returns once it answers.
  RedisSentinelServer(unsigned short primary_port, std::string master_name = "mymaster",
                      std::string primary_password = "");
  ~RedisSentinelServer();
  RedisSentinelServer(const RedisSentinelServer&) = delete;
  RedisSentinelServer& operator=(const RedisSentinelServer&) = delete;

  unsigned short port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  std::optional<std::string> query(const std::vector<std::string>& args) const {
    return redisQuery(port_, args);
  }
  void stop();

  // Sentinel learns replicas only from the primary's INFO (every 10 s, or at once when it
  // connects): waits until it lists `count` of them.
  bool waitForReplicas(std::size_t count,
                       std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;
  // Waits until it names 127.0.0.1:<port> as the primary.
  bool waitForPrimary(unsigned short port,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

 private:
  bool launch();

  TempDir dir_;
  std::string master_name_;
  unsigned short primary_port_;
  std::string primary_password_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

}  // namespace saslguard::testing
