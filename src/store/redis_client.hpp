// redis_client.hpp — a RESP2 client on Boost.Asio: a small pool of pipelined TCP connections
// (replies matched to commands in order), AUTH and SELECT on every (re)connect, a deadline on
// every command, reconnect with backoff, and the primary found through Sentinel when configured.
// hiredis is used only to format commands and parse replies; Asio does the I/O.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/result.hpp"

namespace saslguard::store {

// One parsed RESP2 reply. An error reply (-ERR ...) is a value like any other: the command
// reached Redis and Redis said no. Result<RedisReply> fails only when no reply came (transport
// error, timeout, Redis unreachable).
struct RedisReply {
  enum class Type { kString, kStatus, kInteger, kNil, kError, kArray };
  Type type = Type::kNil;
  std::string text;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool isError() const { return type == Type::kError; }
  bool isNil() const { return type == Type::kNil; }
  // An error reply whose code (first word) is `code`: "READONLY", "NOSCRIPT", "WRONGPASS", ...
  bool isErrorCode(std::string_view code) const;
  // "+OK" (or any status equal to `status`).
  bool isStatus(std::string_view status = "OK") const {
    return type == Type::kStatus && text == status;
  }
  // For logs and test messages: "OK", "(integer) 3", "(nil)", "(error) ERR ...", "[a, b]".
  std::string describe() const;
};

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  unsigned short port = 6379;
  std::string describe() const;
};

// "host:port", "[::1]:6379", or "host" (port `default_port`).
Result<RedisEndpoint> parseRedisEndpoint(std::string_view text, unsigned short default_port);

struct RedisOptions {
  // The server, when no sentinels are given.
  RedisEndpoint server;
  // Non-empty: the primary is asked of these (in turn, the first that answers wins) with
  // SENTINEL get-master-addr-by-name `master_name`, on every (re)connect, and a connection whose
  // server does not say ROLE master, or that answers -READONLY, is dropped and rediscovered.
  std::vector<RedisEndpoint> sentinels;
  std::string master_name = "mymaster";
  std::string sentinel_username;  // Sentinel's own ACL user / password (often none)
  std::string sentinel_password;
  std::chrono::milliseconds sentinel_timeout{500};  // per sentinel asked

  std::string username;  // ACL user (Redis 6+); empty with a password: AUTH <password>
  std::string password;  // empty: no AUTH
  int database = 0;      // SELECT after AUTH when not 0

  std::size_t pool_size = 2;  // connections; commands are spread over them round-robin
  // TCP connect plus the handshake (AUTH, SELECT, ROLE); a failed connect is retried only after
  // a backoff growing from reconnect_min to reconnect_max, and commands meanwhile fail at once.
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{1000};
  // From the call to the last reply, whatever the connection state (writing, waiting for a
  // connect, waiting for the reply). On expiry the command fails and its connection is closed
  // (pipelined replies after it can no longer be matched), so the next command reconnects.
  std::chrono::milliseconds command_timeout{250};
  std::size_t max_in_flight = 10000;  // commands queued on one connection; beyond: fail at once
};

struct RedisClientStats {
  std::uint64_t commands = 0;  // calls (a pipeline counts once)
  std::uint64_t failures = 0;  // calls that got no reply (including timeouts)
  std::uint64_t timeouts = 0;
  std::uint64_t connects = 0;  // successful (re)connects
  std::uint64_t connect_failures = 0;
  std::uint64_t discoveries = 0;  // primaries learnt from Sentinel
};

// RESP bytes of one command (hiredis' redisFormatCommandArgv); binary-safe arguments.
std::string formatRedisCommand(std::span<const std::string_view> args);
inline std::string formatRedisCommand(std::initializer_list<std::string_view> args) {
  return formatRedisCommand(std::span<const std::string_view>(args.begin(), args.size()));
}

// Commands sent together on one connection, back to back; their replies come back in order.
class RedisPipeline {
 public:
  RedisPipeline& add(std::span<const std::string_view> args);
  RedisPipeline& add(std::initializer_list<std::string_view> args) {
    return add(std::span<const std::string_view>(args.begin(), args.size()));
  }
  std::size_t size() const { return count_; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
  std::size_t count_ = 0;
};

class RedisClient {
 public:
  // Connects lazily (on the first command). Every call may come from any thread or executor:
  // connection state lives on a strand of `executor`, whose io_context must run (and outlive the
  // client's last command).
  static Result<std::unique_ptr<RedisClient>> create(boost::asio::any_io_executor executor,
                                                     RedisOptions options);
  ~RedisClient();  // closes the connections; commands in flight fail
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command; completes within command_timeout (plus scheduling), never throws for
  // expected failures.
  // The arguments are formatted before this returns, so they need not outlive the call.
  boost::asio::awaitable<Result<RedisReply>> command(std::span<const std::string_view> args);
  // co_await client.command("SET", key, value). Not an initializer_list: g++ 12 miscompiles a
  // braced list that lives across a co_await ("array used as initializer").
  template <class... Args>
  requires(sizeof...(Args) > 0 &&
           (std::is_convertible_v<const Args&, std::string_view> &&
            ...)) boost::asio::awaitable<Result<RedisReply>> command(const Args&... args) {
    const std::array<std::string_view, sizeof...(Args)> views{std::string_view(args)...};
    return command(std::span<const std::string_view>(views));
  }
  // Several commands on one connection in one write: one reply per command, in order. A
  // -READONLY reply to a single command is retried once on the rediscovered primary. A non-zero
  // `timeout` replaces command_timeout for this call (WAIT for replicas, say).
  boost::asio::awaitable<Result<std::vector<RedisReply>>> pipeline(
      RedisPipeline commands, std::chrono::milliseconds timeout = {});

  // Blocking forms for callers off the request path (CLI, tests, startup). They wait on a future,
  // so never call them from a thread running this client's io_context.
  Result<RedisReply> commandBlocking(std::span<const std::string_view> args);
  Result<RedisReply> commandBlocking(std::initializer_list<std::string_view> args);
  Result<std::vector<RedisReply>> pipelineBlocking(RedisPipeline commands,
                                                   std::chrono::milliseconds timeout = {});

  // Where the last successful connect went ("127.0.0.1:6379"); empty before one.
  std::string currentPrimary() const;
  RedisClientStats stats() const;

  class Impl;

 private:
  explicit RedisClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace saslguard::store
