// redis_test_util.hpp — what the Redis client tests share: an io_context on its own thread (the
// client's strand lives there), a way to run a coroutine on it and wait, and client options for
// a test server with short timeouts.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <memory>
#include <thread>

#include "store/redis_client.hpp"

namespace saslguard::store::testing {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

class IoThread {
 public:
  IoThread() : thread_([this] { context_.run(); }) {}
  ~IoThread() {
    work_.reset();
    context_.stop();
    thread_.join();
  }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::io_context& context() { return context_; }
  asio::any_io_executor executor() { return context_.get_executor(); }

  // Runs `task` on the io_context and waits for its result.
  template <class T>
  T run(asio::awaitable<T> task) {
    return asio::co_spawn(context_, std::move(task), asio::use_future).get();
  }

 private:
  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{context_.get_executor()};
  std::thread thread_;
};

inline RedisOptions optionsFor(unsigned short port) {
  RedisOptions options;
  options.server = RedisEndpoint{"127.0.0.1", port};
  options.connect_timeout = 500ms;
  options.command_timeout = 300ms;
  options.reconnect_min = 20ms;
  options.reconnect_max = 200ms;
  return options;
}

inline std::unique_ptr<RedisClient> makeClient(IoThread& io, RedisOptions options) {
  auto client = RedisClient::create(io.executor(), std::move(options));
  if (!client) {
    ADD_FAILURE() << client.error().message;
    return nullptr;
  }
  return std::move(*client);
}

inline std::string describe(const Result<RedisReply>& reply) {
  return reply ? reply->describe() : "failure: " + reply.error().message;
}

inline long long millisSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

}  // namespace saslguard::store::testing
