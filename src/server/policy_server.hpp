// policy_server.hpp — the policy listeners and their connections: one io_context per worker
// thread (connections never migrate, so a connection's state needs no lock), an accept loop per
// listener handing sockets out round robin, idle sweeps, a connection cap and graceful stop.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/pipeline.hpp"
#include "protocol/parser.hpp"
#include "server/endpoint.hpp"

namespace saslguard::server {

class Connection;

struct ServerLimits {
  protocol::Limits protocol;
  protocol::Action malformed_action = protocol::Action::Dunno;
  int max_connections = 4096;
  int idle_timeout_s = 600;
};

// One worker thread with its own event loop and the connections it owns. Only that thread touches
// `connections` and `pipeline`; others post work to `context`.
struct Worker {
  asio::io_context context{1};
  std::thread thread;
  engine::PipelinePtr pipeline;
  ServerLimits limits;
  std::unordered_set<std::shared_ptr<Connection>> connections;
  bool stopping = false;
  asio::steady_timer sweep_timer{context};
  std::atomic<std::uint64_t> heartbeat{0};

  // This thread's resolver for `pipeline`'s lookups, made anew when a reload brings another
  // pipeline (lookups in flight keep the old one alive).
  const engine::Enrichers& enrichersFor(const engine::Pipeline& pipeline);

 private:
  engine::Enrichers enrichers_;
  const engine::Pipeline* enrichers_pipeline_ = nullptr;
};

class PolicyServer {
 public:
  PolicyServer(asio::io_context& accept_context, int threads, engine::PipelinePtr pipeline,
               ServerLimits limits);
  ~PolicyServer();

  // Starts accepting on already bound acceptors (see bindListener).
  void start(std::vector<Acceptor> acceptors);
  // Every worker switches to the new pipeline and limits for its next request.
  void reload(engine::PipelinePtr pipeline, ServerLimits limits);
  // Stops accepting, closes idle connections, lets requests in flight finish for up to
  // `grace`, then closes the rest. `done` runs on the accept context when all are gone.
  void stop(std::chrono::milliseconds grace, std::function<void()> done);
  // Joins the worker threads (after stop's `done`).
  void join();

  // Posts a heartbeat to every worker; `allAlive` is true when every worker answered the last one.
  bool heartbeat();
  std::int64_t openConnections() const;

 private:
  asio::awaitable<void> acceptLoop(Acceptor& acceptor);
  void sweepIdle(Worker& worker);
  void scheduleSweep(Worker& worker);
  asio::awaitable<void> drain(std::chrono::milliseconds grace, std::function<void()> done);

  asio::io_context& accept_context_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Acceptor> acceptors_;
  std::atomic<std::size_t> next_worker_{0};
  std::atomic<std::int64_t> open_{0};
  std::atomic<int> max_connections_;
  std::uint64_t heartbeat_round_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace saslguard::server
