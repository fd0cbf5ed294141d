// redis_wire.hpp — the RESP2 pieces the Redis client and the Sentinel lookup share: a reply
// reader (hiredis' parser turned into RedisReply values), endpoint resolution, and a one-shot
// exchange (connect, send commands, read their replies, close) bounded by a deadline.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "store/redis_client.hpp"

struct redisReader;  // hiredis

namespace saslguard::store {

using SteadyClock = std::chrono::steady_clock;

// Accumulates bytes from the socket and hands out complete replies.
class RedisReplyReader {
 public:
  RedisReplyReader();
  ~RedisReplyReader();
  RedisReplyReader(const RedisReplyReader&) = delete;
  RedisReplyReader& operator=(const RedisReplyReader&) = delete;

  // Fails on a protocol error (the stream is then unusable).
  Result<void> feed(const char* data, std::size_t size);
  // The next complete reply, nullopt when more bytes are needed; fails on a protocol error.
  Result<std::optional<RedisReply>> next();
  // Drops everything buffered (a new connection starts a new stream).
  void reset();

 private:
  redisReader* reader_ = nullptr;
};

// Resolves `endpoint` (an IP address at once; a name with the system resolver).
boost::asio::awaitable<Result<boost::asio::ip::tcp::endpoint>> resolveRedisEndpoint(
    boost::asio::any_io_executor executor, const RedisEndpoint& endpoint);

// Connects to `endpoint`, sends `commands` and reads one reply per command; fails when any step
// is not done by `deadline`. For Sentinel queries and test probes, not the request path.
boost::asio::awaitable<Result<std::vector<RedisReply>>> exchangeOnce(
    boost::asio::any_io_executor executor, const RedisEndpoint& endpoint,
    const RedisPipeline& commands, SteadyClock::time_point deadline);

// Sends `commands` on a connected socket and reads one reply per command through `reader`; fails
// on an I/O error or an error reply. For SUBSCRIBE handshakes: the messages that follow the
// confirmations stay buffered in `reader`.
boost::asio::awaitable<Result<void>> sendAndConfirm(boost::asio::ip::tcp::socket& socket,
                                                    RedisReplyReader& reader,
                                                    const RedisPipeline& commands);

// AUTH for `username`/`password` (nothing when the password is empty) into `commands`.
void addAuth(RedisPipeline& commands, const std::string& username, const std::string& password);

}  // namespace saslguard::store
