// policy_server.cpp — see policy_server.hpp.
#include "server/policy_server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"
#include "enrich/dns.hpp"
#include "metrics/metrics.hpp"
#include "server/connection.hpp"

namespace saslguard::server {
namespace {

// Descriptors kept beside the policy connections: listeners, the admin API's connections, LDAP,
// DNS and database sockets, the store's files, hooks' pipes.
constexpr rlim_t kReservedDescriptors = 1024;

// Raises the soft RLIMIT_NOFILE (often 1024) towards the hard limit so max_connections can be
// open at once; past the hard limit, accept fails with EMFILE and the accept loop pauses.
void raiseFileLimit(int max_connections) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + kReservedDescriptors;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    const auto before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
    if (limit.rlim_cur > before && ::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      spdlog::info("open file limit raised from {} to {} for server.max_connections ({})", before,
                   limit.rlim_cur, max_connections);
    }
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    spdlog::warn(
        "open file limit {} is below server.max_connections ({}) + {}: raise the hard limit "
        "(LimitNOFILE= in the systemd unit, ulimit -Hn) or lower max_connections",
        limit.rlim_cur, max_connections, kReservedDescriptors);
  }
}

}  // namespace

const engine::Enrichers& Worker::enrichersFor(const engine::Pipeline& pipeline) {
  if (enrichers_pipeline_ == &pipeline) return enrichers_;
  enrichers_pipeline_ = &pipeline;
  enrichers_ = {};
  if (pipeline.hasLookups()) {
    auto dns = enrich::DnsResolver::create(context, pipeline.dnsOptions(), pipeline.dnsCache());
    if (dns) {
      enrichers_.dns = std::move(*dns);
    } else {
      spdlog::error("DNS resolver unusable, reputation lookups fail: {}", dns.error().message);
    }
  }
  return enrichers_;
}

PolicyServer::PolicyServer(asio::io_context& accept_context, int threads,
                           engine::PipelinePtr pipeline, ServerLimits limits)
    : accept_context_(accept_context), max_connections_(limits.max_connections) {
  raiseFileLimit(limits.max_connections);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->pipeline = pipeline;
    worker->limits = limits;
    workers_.push_back(std::move(worker));
  }
}

PolicyServer::~PolicyServer() {
  for (auto& worker : workers_) worker->context.stop();
  join();
}

void PolicyServer::start(std::vector<Acceptor> acceptors) {
  acceptors_ = std::move(acceptors);
  for (auto& worker : workers_) {
    scheduleSweep(*worker);
    worker->thread = std::thread([w = worker.get()] {
      auto guard = asio::make_work_guard(w->context);
      w->context.run();
    });
  }
  for (auto& acceptor : acceptors_) {
    asio::co_spawn(accept_context_, acceptLoop(acceptor), asio::detached);
  }
}

asio::awaitable<void> PolicyServer::acceptLoop(Acceptor& acceptor) {
  for (;;) {
    auto& worker =
        *workers_[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
    Socket socket(worker.context);
    boost::system::error_code ec;
    co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of file descriptors and the like: say so, breathe, go on accepting.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(accept_context_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    if (open_.load(std::memory_order_relaxed) >= max_connections_.load(std::memory_order_relaxed)) {
      SASLGUARD_COUNT(connections_refused_total);
      if (log::peerWarningAllowed()) {
        spdlog::warn("connection refused: server.max_connections ({}) reached",
                     max_connections_.load());
      }
      socket.close(ec);
      continue;
    }
    SASLGUARD_COUNT(connections_accepted_total);
    if (socket.local_endpoint(ec).protocol().family() != AF_UNIX) {
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
    }
    open_.fetch_add(1, std::memory_order_relaxed);
    auto connection = std::make_shared<Connection>(std::move(socket), worker, open_);
    asio::post(worker.context, [&worker, connection] {
      worker.connections.insert(connection);
      asio::co_spawn(worker.context, connection->run(), asio::detached);
    });
  }
}

void PolicyServer::scheduleSweep(Worker& worker) {
  worker.sweep_timer.expires_after(std::chrono::seconds(1));
  worker.sweep_timer.async_wait([this, &worker](const boost::system::error_code& ec) {
    if (ec) return;
    sweepIdle(worker);
    scheduleSweep(worker);
  });
}

void PolicyServer::sweepIdle(Worker& worker) {
  const auto limit = std::chrono::seconds(worker.limits.idle_timeout_s);
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Connection>> expired;
  for (const auto& connection : worker.connections) {
    if (now - connection->lastActivity() > limit) expired.push_back(connection);
  }
  for (const auto& connection : expired) {
    SASLGUARD_COUNT(connections_idle_closed_total);
    connection->close();
  }
}

void PolicyServer::reload(engine::PipelinePtr pipeline, ServerLimits limits) {
  if (limits.max_connections > max_connections_) raiseFileLimit(limits.max_connections);
  max_connections_ = limits.max_connections;
  for (auto& worker : workers_) {
    asio::post(worker->context, [w = worker.get(), pipeline, limits] {
      w->pipeline = pipeline;
      w->limits = limits;
    });
  }
}

void PolicyServer::stop(std::chrono::milliseconds grace, std::function<void()> done) {
  stopping_ = true;
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
  }
  for (auto& worker : workers_) {
    asio::post(worker->context, [w = worker.get()] {
      w->stopping = true;
      std::vector<std::shared_ptr<Connection>> idle;
      for (const auto& connection : w->connections) {
        if (connection->idle()) idle.push_back(connection);
      }
      for (const auto& connection : idle) connection->close();
    });
  }
  asio::co_spawn(accept_context_, drain(grace, std::move(done)), asio::detached);
}

// Waits until every connection is gone or the grace period ends, then closes what is left.
asio::awaitable<void> PolicyServer::drain(std::chrono::milliseconds grace,
                                          std::function<void()> done) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  asio::steady_timer timer(accept_context_);
  bool forced = false;
  while (open_.load() > 0) {
    if (!forced && std::chrono::steady_clock::now() >= deadline) {
      forced = true;
      spdlog::warn("{} connection(s) still busy after the shutdown grace period; closing them",
                   open_.load());
      for (auto& worker : workers_) {
        asio::post(worker->context, [w = worker.get()] {
          std::vector<std::shared_ptr<Connection>> all(w->connections.begin(),
                                                       w->connections.end());
          for (const auto& connection : all) connection->close();
        });
      }
    }
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::use_awaitable);
  }
  for (auto& worker : workers_) worker->context.stop();
  done();
}

void PolicyServer::join() {
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

bool PolicyServer::heartbeat() {
  bool allAlive = true;
  for (auto& worker : workers_) {
    if (worker->heartbeat.load() != heartbeat_round_) allAlive = false;
  }
  ++heartbeat_round_;
  for (auto& worker : workers_) {
    asio::post(worker->context,
               [w = worker.get(), round = heartbeat_round_] { w->heartbeat.store(round); });
  }
  return allAlive;
}

std::int64_t PolicyServer::openConnections() const {
  return open_.load();
}

}  // namespace saslguard::server
