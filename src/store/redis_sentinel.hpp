// redis_sentinel.hpp — finds the Redis primary through Sentinel: asks each configured sentinel
// in turn (SENTINEL get-master-addr-by-name) until one answers, and remembers which one did, so
// the next lookup asks it first (the Sentinel client guidelines).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "store/redis_client.hpp"

namespace saslguard::store {

class SentinelDiscovery {
 public:
  explicit SentinelDiscovery(const RedisOptions& options);

  // The primary's address as the first answering sentinel knows it. Each sentinel gets
  // options.sentinel_timeout. Not thread-safe: the client calls it on its strand.
  boost::asio::awaitable<Result<RedisEndpoint>> primary(boost::asio::any_io_executor executor);

 private:
  std::vector<RedisEndpoint> sentinels_;  // the one that answered last comes first
  std::string master_name_;
  std::string username_;
  std::string password_;
  std::chrono::milliseconds timeout_;
};

}  // namespace saslguard::store
