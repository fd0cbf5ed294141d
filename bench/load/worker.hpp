// worker.hpp — one load-generator thread: its own io_context driving a share of the connections,
// each keeping one policy request in flight (closed loop) or following a fixed schedule (open
// loop), and the statistics it gathers, merged by the caller after the thread ends.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/endpoint.hpp"
#include "load/histogram.hpp"
#include "load/population.hpp"

namespace saslguard::bench {

using Clock = std::chrono::steady_clock;

// The whole run, shared read-only by every worker (request_budget excepted, an atomic).
struct RunPlan {
  Endpoint target;
  const Population* population = nullptr;
  uint64_t seed = 1;
  uint32_t connections = 16;
  double rate_per_s = 0;  // 0: closed loop
  Clock::duration timeout{std::chrono::milliseconds(1000)};
  Clock::time_point start;          // first request (connections are made before it)
  Clock::time_point measure_start;  // start + warmup: replies (and errors) from here are counted
  Clock::time_point end;            // measure_start + duration: nothing is sent or counted after
  uint64_t request_limit = 0;       // stop after this many counted requests; 0: no limit
  std::atomic<uint64_t>* requests_counted = nullptr;

  bool openLoop() const { return rate_per_s > 0; }
};

struct LoadStats {
  LatencyHistogram latency;   // nanoseconds, answered requests only
  LatencyHistogram send_lag;  // open loop: how late the generator sent an unqueued request
  uint64_t dunno = 0, hold = 0, reject = 0, defer = 0, other = 0;
  uint64_t err_connect = 0, err_closed = 0, err_timeout = 0, err_malformed = 0;
  uint64_t unsent = 0;  // open loop: slots of the window never sent because the run ended first
  Clock::time_point last_completion{};  // of the last counted request, answered or failed

  uint64_t answered() const { return dunno + hold + reject + defer + other; }
  void merge(const LoadStats& other);
};

class Connection;

class Worker {
 public:
  Worker(const RunPlan& plan, const std::vector<uint32_t>& connection_ids);
  ~Worker();
  void run();  // returns when every connection has finished
  const LoadStats& stats() const { return stats_; }

 private:
  boost::asio::io_context context_{1};
  LoadStats stats_;
  std::vector<std::unique_ptr<Connection>> connections_;
};

}  // namespace saslguard::bench
