// redis_client.cpp — see redis_client.hpp. Each pooled connection keeps, on the client's strand,
// the calls awaiting replies in the order they were written; the reader hands each reply to the
// oldest call. A call sleeps on a timer set to its deadline: a reply cancels the timer, expiry
// fails the call and closes the connection (later replies could no longer be matched).
#include "store/redis_client.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <mutex>
#include <optional>

#include "store/redis_sentinel.hpp"
#include "store/redis_wire.hpp"

// g++ 12 flags Asio's awaitable frame allocator (its own operator new/delete pair) as
// mismatched once a coroutine is inlined enough; a known false positive (GCC bug 109224).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace saslguard::store {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

using Replies = std::vector<RedisReply>;

// One call (a command or a pipeline) waiting for its replies.
struct PendingCall {
  PendingCall(const asio::any_io_executor& executor, SteadyClock::time_point deadline,
              std::size_t expected_replies)
      : wakeup(executor, deadline), expected(expected_replies) {}

  void complete(Result<Replies> result) {
    if (outcome) return;  // already timed out or failed
    outcome = std::move(result);
    wakeup.cancel();
  }

  asio::steady_timer wakeup;  // expires at the deadline; cancelled when the outcome is known
  std::size_t expected;
  Replies replies;
  std::optional<Result<Replies>> outcome;
};

std::string millis(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

}  // namespace

class RedisClient::Impl : public std::enable_shared_from_this<RedisClient::Impl> {
 public:
  Impl(asio::any_io_executor executor, RedisOptions options)
      : strand_(asio::make_strand(executor)),
        options_(std::move(options)),
        discovery_(options_),
        watch_socket_(strand_),
        watch_pause_(strand_) {
    for (std::size_t i = 0; i < options_.pool_size; ++i) {
      connections_.push_back(std::make_unique<Connection>(strand_));
    }
  }

  // Runs on the strand. Sends `bytes` (`count` commands) and returns their replies.
  // A zero `timeout` means options.command_timeout.
  asio::awaitable<Result<Replies>> call(std::string bytes, std::size_t count,
                                        std::chrono::milliseconds timeout = {});
  void shutdown();

  std::string currentPrimary() const {
    std::lock_guard lock(primary_mutex_);
    return primary_;
  }
  RedisClientStats stats() const {
    RedisClientStats s;
    s.commands = commands_.load();
    s.failures = failures_.load();
    s.timeouts = timeouts_.load();
    s.connects = connects_.load();
    s.connect_failures = connect_failures_.load();
    s.discoveries = discoveries_.load();
    return s;
  }

  asio::any_io_executor strand() const { return strand_; }

 private:
  struct Connection {
    explicit Connection(const asio::any_io_executor& executor) : socket(executor) {}
    enum class State { kIdle, kConnecting, kReady };
    State state = State::kIdle;
    tcp::socket socket;
    // Bumped by every close: coroutines of an older connection see it and leave quietly.
    std::uint64_t generation = 0;
    std::deque<std::shared_ptr<PendingCall>> awaiting;  // in write order
    std::string unsent;  // commands queued while connecting or while a write is in progress
    bool writing = false;
    RedisReplyReader reader;
    SteadyClock::time_point retry_at{};  // no connect attempt before this (backoff)
    std::chrono::milliseconds backoff{0};
    std::string last_error;
  };

  // Round-robin, skipping a connection that waits out its reconnect backoff while another can
  // serve (after an outage the pooled connections come back one by one).
  Connection& pick() {
    next_connection_ = (next_connection_ + 1) % connections_.size();
    const auto now = SteadyClock::now();
    for (std::size_t step = 0; step < connections_.size(); ++step) {
      auto& candidate = *connections_[(next_connection_ + step) % connections_.size()];
      if (candidate.state != Connection::State::kIdle || now >= candidate.retry_at) {
        return candidate;
      }
    }
    return *connections_[next_connection_];
  }
  asio::awaitable<Result<Replies>> callOn(Connection& connection, const std::string& bytes,
                                          std::size_t count, SteadyClock::time_point deadline,
                                          std::chrono::milliseconds timeout,
                                          std::uint64_t& generation);
  void startConnect(Connection& connection);
  asio::awaitable<void> connect(Connection& connection, std::uint64_t generation);
  asio::awaitable<void> readLoop(Connection& connection, std::uint64_t generation);
  asio::awaitable<void> writeLoop(Connection& connection, std::uint64_t generation);
  void startWriter(Connection& connection);
  void startReader(Connection& connection);
  void closeConnection(Connection& connection, const std::string& why);
  void connectFailed(Connection& connection, const std::string& why);
  // Listens for +switch-master on one sentinel at a time and drops every connection when our
  // primary changes: a demoted primary that stays up would otherwise keep taking writes until
  // Sentinel reconfigures it (which takes many seconds) or it answers -READONLY.
  asio::awaitable<void> watchSwitches();
  asio::awaitable<Result<void>> subscribeToSwitches(const RedisEndpoint& sentinel,
                                                    RedisReplyReader& reader);

  asio::any_io_executor strand_;
  RedisOptions options_;
  SentinelDiscovery discovery_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::size_t next_connection_ = 0;
  bool shut_down_ = false;
  bool watching_ = false;
  tcp::socket watch_socket_;        // the subscription to a sentinel
  asio::steady_timer watch_pause_;  // between attempts when no sentinel takes the subscription

  mutable std::mutex primary_mutex_;
  std::string primary_;

  std::atomic<std::uint64_t> commands_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> connect_failures_{0};
  std::atomic<std::uint64_t> discoveries_{0};
};

asio::awaitable<Result<Replies>> RedisClient::Impl::call(std::string bytes, std::size_t count,
                                                         std::chrono::milliseconds timeout) {
  if (count == 0) co_return Replies{};
  ++commands_;
  if (timeout <= std::chrono::milliseconds::zero()) timeout = options_.command_timeout;
  const auto deadline = SteadyClock::now() + timeout;
  for (int attempt = 0;; ++attempt) {
    if (shut_down_) {
      ++failures_;
      co_return fail("Redis client shut down");
    }
    if (!watching_ && !options_.sentinels.empty()) {
      watching_ = true;
      asio::co_spawn(
          strand_, [self = shared_from_this()] { return self->watchSwitches(); }, asio::detached);
    }
    auto& connection = pick();
    std::uint64_t generation = 0;
    auto result = co_await callOn(connection, bytes, count, deadline, timeout, generation);
    if (!result) {
      ++failures_;
      co_return result;
    }
    const bool readonly = std::any_of(result->begin(), result->end(), [](const RedisReply& r) {
      return r.isErrorCode("READONLY");
    });
    if (!readonly) co_return result;
    // The server we write to was demoted (a failover happened): every connection to it is
    // useless, and a reconnect asks Sentinel for the new primary.
    if (connection.generation == generation) {
      closeConnection(connection, "Redis server became a replica (-READONLY)");
    }
    for (auto& other : connections_) {
      if (other->state == Connection::State::kReady) {
        closeConnection(*other, "Redis server became a replica (-READONLY)");
      }
    }
    // A refused write did nothing, so a single command can go again to the new primary.
    if (attempt > 0 || count != 1 || options_.sentinels.empty() || SteadyClock::now() >= deadline) {
      co_return result;
    }
  }
}

asio::awaitable<Result<Replies>> RedisClient::Impl::callOn(Connection& connection,
                                                           const std::string& bytes,
                                                           std::size_t count,
                                                           SteadyClock::time_point deadline,
                                                           std::chrono::milliseconds timeout,
                                                           std::uint64_t& generation) {
  if (connection.awaiting.size() >= options_.max_in_flight) {
    co_return fail("too many Redis commands in flight (" + std::to_string(options_.max_in_flight) +
                   " on one connection)");
  }
  if (connection.state == Connection::State::kIdle && SteadyClock::now() < connection.retry_at) {
    co_return fail("Redis unavailable: " + connection.last_error);
  }
  auto pending = std::make_shared<PendingCall>(strand_, deadline, count);
  connection.awaiting.push_back(pending);
  connection.unsent += bytes;
  generation = connection.generation;
  if (connection.state == Connection::State::kIdle) {
    startConnect(connection);
  } else {
    startWriter(connection);
  }
  while (!pending->outcome) {
    boost::system::error_code woken;  // operation_aborted: the outcome is known
    co_await pending->wakeup.async_wait(asio::redirect_error(asio::use_awaitable, woken));
    if (pending->outcome || SteadyClock::now() < deadline) continue;
    ++timeouts_;
    const bool was_connecting = connection.state == Connection::State::kConnecting;
    pending->complete(fail(was_connecting ? "no Redis connection within " + millis(timeout)
                                          : "no Redis reply within " + millis(timeout)));
    // Still queued, so the connection is the one it was sent on (a close fails every call).
    if (was_connecting) {
      connectFailed(connection, "connect did not finish within the command timeout");
    } else {
      closeConnection(connection, "an earlier command on this connection timed out");
    }
  }
  co_return std::move(*pending->outcome);
}

void RedisClient::Impl::startConnect(Connection& connection) {
  connection.state = Connection::State::kConnecting;
  asio::co_spawn(
      strand_,
      [self = shared_from_this(), &connection, generation = connection.generation] {
        return self->connect(connection, generation);
      },
      asio::detached);
}

asio::awaitable<void> RedisClient::Impl::connect(Connection& connection, std::uint64_t generation) {
  RedisEndpoint target = options_.server;
  if (!options_.sentinels.empty()) {
    auto primary = co_await discovery_.primary(strand_);
    if (connection.generation != generation) co_return;  // given up meanwhile
    if (!primary) {
      connectFailed(connection, primary.error().message);
      co_return;
    }
    ++discoveries_;
    target = std::move(*primary);
  }
  const auto address = co_await resolveRedisEndpoint(strand_, target);
  if (connection.generation != generation) co_return;
  if (!address) {
    connectFailed(connection, address.error().message);
    co_return;
  }

  // The guard gives up the attempt at its deadline; the handshake call has the same deadline.
  const auto deadline = SteadyClock::now() + options_.connect_timeout;
  auto guard = std::make_shared<asio::steady_timer>(strand_, deadline);
  guard->async_wait([self = shared_from_this(), &connection, generation,
                     where = target.describe()](const boost::system::error_code& error) {
    if (error || connection.generation != generation) return;
    if (connection.state == Connection::State::kConnecting) {
      self->connectFailed(connection, "cannot connect to Redis at " + where + ": timed out");
    }
  });
  struct CancelGuard {
    std::shared_ptr<asio::steady_timer> timer;
    ~CancelGuard() { timer->cancel(); }
  } cancel_guard{guard};

  boost::system::error_code error;
  co_await connection.socket.async_connect(*address,
                                           asio::redirect_error(asio::use_awaitable, error));
  if (connection.generation != generation) co_return;
  if (error) {
    connectFailed(connection,
                  "cannot connect to Redis at " + target.describe() + ": " + error.message());
    co_return;
  }
  connection.socket.set_option(tcp::no_delay(true), error);

  // AUTH, SELECT, a PING that proves the server answers at all (a stopped server accepts TCP
  // connections), and under Sentinel a ROLE check (a stale answer may name a demoted primary).
  RedisPipeline handshake;
  addAuth(handshake, options_.username, options_.password);
  const bool with_auth = handshake.size() > 0;
  if (options_.database != 0) handshake.add({"SELECT", std::to_string(options_.database)});
  handshake.add({"PING"});
  if (!options_.sentinels.empty()) handshake.add({"ROLE"});

  auto pending = std::make_shared<PendingCall>(strand_, deadline, handshake.size());
  connection.awaiting.push_front(pending);  // its replies come before any queued command's
  startReader(connection);
  const auto handshake_bytes = handshake.bytes();
  co_await asio::async_write(connection.socket, asio::buffer(handshake_bytes),
                             asio::redirect_error(asio::use_awaitable, error));
  if (connection.generation != generation) co_return;
  if (error) {
    connectFailed(connection,
                  "cannot write to Redis at " + target.describe() + ": " + error.message());
    co_return;
  }
  while (!pending->outcome) {
    boost::system::error_code woken;
    co_await pending->wakeup.async_wait(asio::redirect_error(asio::use_awaitable, woken));
    if (connection.generation != generation) co_return;
    if (!pending->outcome && SteadyClock::now() >= deadline) {
      connectFailed(connection, "Redis at " + target.describe() + " did not answer within " +
                                    millis(options_.connect_timeout));
      co_return;
    }
  }
  if (!*pending->outcome) co_return;  // the connection failed and was closed already
  const auto& replies = **pending->outcome;
  std::size_t index = 0;
  std::string refused;
  if (with_auth && !replies[index++].isStatus()) {
    refused = "Redis refused AUTH: " + replies[index - 1].describe();
  } else if (options_.database != 0 && !replies[index++].isStatus()) {
    refused = "Redis refused SELECT " + std::to_string(options_.database) + ": " +
              replies[index - 1].describe();
  } else if (!replies[index++].isStatus("PONG")) {
    refused = "Redis answered PING with " + replies[index - 1].describe();
  } else if (!options_.sentinels.empty()) {
    const auto& role = replies[index];
    if (role.type != RedisReply::Type::kArray || role.elements.empty() ||
        role.elements[0].text != "master") {
      refused = "Sentinel named " + target.describe() + " but its ROLE is " + role.describe();
    }
  }
  if (!refused.empty()) {
    connectFailed(connection, refused);
    co_return;
  }
  connection.state = Connection::State::kReady;
  connection.backoff = std::chrono::milliseconds(0);
  ++connects_;
  {
    std::lock_guard lock(primary_mutex_);
    primary_ = target.describe();
  }
  startWriter(connection);
}

void RedisClient::Impl::startReader(Connection& connection) {
  asio::co_spawn(
      strand_,
      [self = shared_from_this(), &connection, generation = connection.generation] {
        return self->readLoop(connection, generation);
      },
      asio::detached);
}

asio::awaitable<void> RedisClient::Impl::readLoop(Connection& connection,
                                                  std::uint64_t generation) {
  std::array<char, 16384> buffer;  // in this frame: an older reader never shares a buffer
  for (;;) {
    boost::system::error_code error;
    const auto received = co_await connection.socket.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, error));
    if (connection.generation != generation) co_return;
    if (error) {
      closeConnection(connection, error == asio::error::eof
                                      ? "Redis closed the connection"
                                      : "Redis connection failed: " + error.message());
      co_return;
    }
    if (auto fed = connection.reader.feed(buffer.data(), received); !fed) {
      closeConnection(connection, fed.error().message);
      co_return;
    }
    for (;;) {
      auto next = connection.reader.next();
      if (!next) {
        closeConnection(connection, next.error().message);
        co_return;
      }
      if (!*next) break;
      if (connection.awaiting.empty()) {
        closeConnection(connection, "Redis sent a reply nobody asked for");
        co_return;
      }
      auto& oldest = connection.awaiting.front();
      oldest->replies.push_back(std::move(**next));
      if (oldest->replies.size() == oldest->expected) {
        auto done = std::move(oldest);
        connection.awaiting.pop_front();
        done->complete(std::move(done->replies));
      }
    }
  }
}

void RedisClient::Impl::startWriter(Connection& connection) {
  if (connection.writing || connection.state != Connection::State::kReady ||
      connection.unsent.empty()) {
    return;
  }
  connection.writing = true;
  asio::co_spawn(
      strand_,
      [self = shared_from_this(), &connection, generation = connection.generation] {
        return self->writeLoop(connection, generation);
      },
      asio::detached);
}

asio::awaitable<void> RedisClient::Impl::writeLoop(Connection& connection,
                                                   std::uint64_t generation) {
  // The first write waits for the calls already queued on the strand (the other requests the
  // worker read in the same turn of its loop): they go out in one write, and their replies
  // mostly come back in one read. Commands queued during a write go out together in the next.
  co_await asio::post(strand_, asio::use_awaitable);
  while (connection.generation == generation && !connection.unsent.empty()) {
    std::string batch;
    batch.swap(connection.unsent);
    boost::system::error_code error;
    co_await asio::async_write(connection.socket, asio::buffer(batch),
                               asio::redirect_error(asio::use_awaitable, error));
    if (connection.generation != generation) co_return;
    if (error) {
      closeConnection(connection, "cannot write to Redis: " + error.message());
      co_return;
    }
  }
  if (connection.generation == generation) connection.writing = false;
}

void RedisClient::Impl::closeConnection(Connection& connection, const std::string& why) {
  ++connection.generation;
  connection.state = Connection::State::kIdle;
  connection.writing = false;
  connection.unsent.clear();
  connection.reader.reset();
  boost::system::error_code ignored;
  connection.socket.close(ignored);
  auto calls = std::move(connection.awaiting);
  connection.awaiting.clear();
  for (auto& call : calls) call->complete(fail(why));
}

void RedisClient::Impl::connectFailed(Connection& connection, const std::string& why) {
  ++connect_failures_;
  connection.last_error = why;
  connection.backoff = std::clamp(connection.backoff * 2, options_.reconnect_min,
                                  std::max(options_.reconnect_min, options_.reconnect_max));
  connection.retry_at = SteadyClock::now() + connection.backoff;
  closeConnection(connection, why);
}

asio::awaitable<Result<void>> RedisClient::Impl::subscribeToSwitches(const RedisEndpoint& sentinel,
                                                                     RedisReplyReader& reader) {
  const auto address = co_await resolveRedisEndpoint(strand_, sentinel);
  if (!address) co_return fail(address.error().message);
  if (shut_down_) co_return fail("shut down");
  // Connect and subscribe within sentinel_timeout; the guard closes the socket otherwise.
  auto guard = std::make_shared<asio::steady_timer>(strand_, options_.sentinel_timeout);
  guard->async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (error) return;
    boost::system::error_code ignored;
    self->watch_socket_.close(ignored);
  });
  struct CancelGuard {
    std::shared_ptr<asio::steady_timer> timer;
    ~CancelGuard() { timer->cancel(); }
  } cancel_guard{guard};

  boost::system::error_code error;
  co_await watch_socket_.async_connect(*address, asio::redirect_error(asio::use_awaitable, error));
  if (error) co_return fail(error.message());
  RedisPipeline subscribe;
  addAuth(subscribe, options_.sentinel_username, options_.sentinel_password);
  subscribe.add({"SUBSCRIBE", "+switch-master"});
  co_return co_await sendAndConfirm(watch_socket_, reader, subscribe);
}

asio::awaitable<void> RedisClient::Impl::watchSwitches() {
  const auto prefix = options_.master_name + " ";
  std::array<char, 4096> buffer;
  for (std::size_t attempt = 0; !shut_down_; ++attempt) {
    const auto& sentinel = options_.sentinels[attempt % options_.sentinels.size()];
    RedisReplyReader reader;
    auto subscribed = co_await subscribeToSwitches(sentinel, reader);
    while (subscribed && !shut_down_) {
      auto next = reader.next();
      if (!next) break;
      if (!*next) {
        boost::system::error_code error;
        const auto received = co_await watch_socket_.async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, error));
        if (error || !reader.feed(buffer.data(), received)) break;
        continue;
      }
      // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
      const auto& message = **next;
      if (message.type == RedisReply::Type::kArray && message.elements.size() == 3 &&
          message.elements[2].text.starts_with(prefix)) {
        for (auto& connection : connections_) {
          if (connection->state != Connection::State::kIdle) {
            closeConnection(*connection,
                            "Sentinel switched the primary of " + options_.master_name);
          }
        }
      }
    }
    boost::system::error_code ignored;
    watch_socket_.close(ignored);
    if (shut_down_) break;
    // Next sentinel at once; after a round of failures, a pause.
    if ((attempt + 1) % options_.sentinels.size() == 0) {
      watch_pause_.expires_after(std::max(options_.reconnect_max, std::chrono::milliseconds(100)));
      co_await watch_pause_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
}

void RedisClient::Impl::shutdown() {
  shut_down_ = true;
  boost::system::error_code ignored;
  watch_socket_.close(ignored);
  watch_pause_.cancel();
  for (auto& connection : connections_) closeConnection(*connection, "Redis client shut down");
}

Result<std::unique_ptr<RedisClient>> RedisClient::create(asio::any_io_executor executor,
                                                         RedisOptions options) {
  if (options.pool_size == 0) return fail("Redis pool size must be at least 1");
  if (options.command_timeout <= std::chrono::milliseconds::zero() ||
      options.connect_timeout <= std::chrono::milliseconds::zero()) {
    return fail("Redis timeouts must be > 0");
  }
  if (options.database < 0) return fail("Redis database number must be >= 0");
  if (!options.sentinels.empty() && options.master_name.empty()) {
    return fail("Redis Sentinel needs a master name");
  }
  if (options.sentinels.empty() && options.server.host.empty()) {
    return fail("Redis server address is empty");
  }
  if (options.max_in_flight == 0) options.max_in_flight = 1;
  return std::unique_ptr<RedisClient>(
      new RedisClient(std::make_shared<Impl>(std::move(executor), std::move(options))));
}

RedisClient::RedisClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisClient::~RedisClient() {
  asio::post(impl_->strand(), [impl = impl_] { impl->shutdown(); });
}

namespace {

// Runs `bytes` on the client's strand, hopping there and back unless already on it.
asio::awaitable<Result<Replies>> callOnStrand(std::shared_ptr<RedisClient::Impl> impl,
                                              std::string bytes, std::size_t count,
                                              std::chrono::milliseconds timeout = {});

asio::awaitable<Result<RedisReply>> singleReply(asio::awaitable<Result<Replies>> call) {
  auto replies = co_await std::move(call);
  if (!replies) co_return fail(replies.error().message);
  co_return std::move(replies->front());
}

}  // namespace

asio::awaitable<Result<RedisReply>> RedisClient::command(std::span<const std::string_view> args) {
  // Formatted now, not when the awaitable starts: the arguments need not outlive this call.
  return singleReply(callOnStrand(impl_, formatRedisCommand(args), 1));
}

asio::awaitable<Result<Replies>> RedisClient::pipeline(RedisPipeline commands,
                                                       std::chrono::milliseconds timeout) {
  return callOnStrand(impl_, commands.bytes(), commands.size(), timeout);
}

Result<RedisReply> RedisClient::commandBlocking(std::span<const std::string_view> args) {
  RedisPipeline one;
  one.add(args);
  auto replies = pipelineBlocking(std::move(one));
  if (!replies) return fail(replies.error().message);
  return std::move(replies->front());
}

Result<RedisReply> RedisClient::commandBlocking(std::initializer_list<std::string_view> args) {
  return commandBlocking(std::span<const std::string_view>(args.begin(), args.size()));
}

Result<Replies> RedisClient::pipelineBlocking(RedisPipeline commands,
                                              std::chrono::milliseconds timeout) {
  if (commands.size() == 0) return Replies{};
  return asio::co_spawn(
             impl_->strand(),
             [impl = impl_, bytes = commands.bytes(), count = commands.size(), timeout]() mutable {
               return impl->call(std::move(bytes), count, timeout);
             },
             asio::use_future)
      .get();
}

std::string RedisClient::currentPrimary() const {
  return impl_->currentPrimary();
}

RedisClientStats RedisClient::stats() const {
  return impl_->stats();
}

namespace {

asio::awaitable<Result<Replies>> callHoldingImpl(std::shared_ptr<RedisClient::Impl> impl,
                                                 std::string bytes, std::size_t count,
                                                 std::chrono::milliseconds timeout) {
  co_return co_await impl->call(std::move(bytes), count, timeout);
}

// Not a coroutine itself: g++ 12 destroys a lambda's captures twice when the closure is a
// temporary inside a co_await expression, so the hop is built outside of one.
asio::awaitable<Result<Replies>> callOnStrand(std::shared_ptr<RedisClient::Impl> impl,
                                              std::string bytes, std::size_t count,
                                              std::chrono::milliseconds timeout) {
  const auto strand = impl->strand();
  if (strand.target<asio::strand<asio::any_io_executor>>()->running_in_this_thread()) {
    return callHoldingImpl(std::move(impl), std::move(bytes), count, timeout);
  }
  return asio::co_spawn(
      strand,
      [impl, bytes = std::move(bytes), count, timeout]() mutable {
        return impl->call(std::move(bytes), count, timeout);
      },
      asio::use_awaitable);
}

}  // namespace

}  // namespace saslguard::store
