// main.cpp — saslguard-load: drives a Postfix policy server with realistic smtpd requests, closed
// loop (C connections, one request in flight each) or open loop (R req/s, no coordinated omission),
// and reports throughput, latency percentiles, actions, errors and its own CPU cost.
#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <thread>

#include "common/endpoint.hpp"
#include "load/population.hpp"
#include "load/report.hpp"
#include "load/worker.hpp"

namespace saslguard::bench {
namespace {

namespace asio = boost::asio;

struct LoadOptions {
  std::string target = "127.0.0.1:10040";
  uint32_t connections = 16;
  double rate_per_s = 0;
  double duration_s = 10;
  double warmup_s = 2;
  uint64_t requests = 0;
  uint32_t timeout_ms = 1000;
  uint32_t threads = 1;
  PopulationSettings population;
  int server_pid = 0;
  bool quiet = false;
};

// One connection attempt before anything starts, so an absent server is one clear line, not a run
// full of connect errors.
std::optional<std::string> checkConnect(const Endpoint& target, uint32_t timeout_ms) {
  asio::io_context context;
  asio::generic::stream_protocol::socket socket(context);
  boost::system::error_code result = asio::error::timed_out;
  socket.async_connect(target.address, [&](boost::system::error_code error) { result = error; });
  context.run_for(std::chrono::milliseconds(timeout_ms));
  if (!result) return std::nullopt;
  return result == asio::error::timed_out ? std::string("timed out") : result.message();
}

int runLoad(const LoadOptions& options) {
  auto target = parseEndpoint(options.target);
  if (!target) {
    std::fprintf(stderr, "saslguard-load: --target: %s\n", target.error().c_str());
    return 2;
  }
  if (auto error = checkConnect(*target, options.timeout_ms)) {
    std::fprintf(stderr, "cannot connect to %s: %s\n", options.target.c_str(), error->c_str());
    return 2;
  }

  Population population(options.population);
  std::atomic<uint64_t> requests_counted{0};
  auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  RunPlan plan;
  plan.target = *target;
  plan.population = &population;
  plan.seed = options.population.seed;
  plan.connections = options.connections;
  plan.rate_per_s = options.rate_per_s;
  plan.timeout = std::chrono::milliseconds(options.timeout_ms);
  plan.start = Clock::now() + std::chrono::milliseconds(100);  // time to open the connections
  plan.measure_start = plan.start + seconds(options.warmup_s);
  plan.end = plan.measure_start + seconds(options.duration_s);
  plan.request_limit = options.requests;
  plan.requests_counted = &requests_counted;

  const uint32_t thread_count = std::min(options.threads, options.connections);
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t t = 0; t < thread_count; ++t) {
    std::vector<uint32_t> ids;
    for (uint32_t id = t; id < options.connections; id += thread_count) ids.push_back(id);
    workers.push_back(std::make_unique<Worker>(plan, ids));
  }
  std::vector<std::thread> threads;
  for (auto& worker : workers) threads.emplace_back([&worker] { worker->run(); });

  // CPU is sampled over the measured window only (population setup and warmup excluded).
  std::this_thread::sleep_until(plan.measure_start);
  const auto cpu_before = selfCpuSeconds();
  const auto server_before =
      options.server_pid ? processCpuSeconds(options.server_pid) : std::nullopt;
  for (auto& thread : threads) thread.join();
  const auto cpu_after = selfCpuSeconds();
  const auto server_after =
      options.server_pid ? processCpuSeconds(options.server_pid) : std::nullopt;

  RunReport report;
  report.target = options.target;
  report.connections = options.connections;
  report.threads = thread_count;
  report.rate_per_s = options.rate_per_s;
  report.warmup_s = options.warmup_s;
  for (auto& worker : workers) report.stats.merge(worker->stats());
  // The whole window, unless --requests ended the run early.
  report.measured_s = options.duration_s;
  if (options.requests != 0 && requests_counted.load() >= options.requests) {
    report.measured_s =
        std::chrono::duration<double>(report.stats.last_completion - plan.measure_start).count();
  }
  report.load_user_cpu_s = cpu_after.user - cpu_before.user;
  report.load_cpu_s = report.load_user_cpu_s + cpu_after.system - cpu_before.system;
  if (server_before && server_after) {
    report.server_user_cpu_s = server_after->user - server_before->user;
    report.server_cpu_s = report.server_user_cpu_s + server_after->system - server_before->system;
  }

  if (!options.quiet) printSummary(report);
  printResultLine(report);
  return 0;
}

}  // namespace
}  // namespace saslguard::bench

int main(int argc, char** argv) {
  using saslguard::bench::LoadOptions;
  LoadOptions options;
  CLI::App app{
      "saslguard-load — load generator for Postfix policy servers (SMTPD access policy "
      "delegation).\nSends the requests Postfix 3.7 smtpd sends (k RCPT + END-OF-MESSAGE per "
      "message) and reports req/s, latency and actions.",
      "saslguard-load"};
  app.option_defaults()->always_capture_default();
  app.add_option("--target", options.target, "policy server: host:port, [v6]:port or unix:/path");
  app.add_option("--connections,-c", options.connections, "policy connections (smtpd processes)")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--rate,-r", options.rate_per_s,
                 "open loop: total requests per second over all connections; 0 = closed loop")
      ->check(CLI::Range(0.0, 1e8));
  app.add_option("--duration,-d", options.duration_s, "measured seconds (after the warmup)")
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("--warmup", options.warmup_s, "seconds run first and not counted")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--requests,-n", options.requests,
                 "stop after this many counted requests (or at --duration); 0 = no limit");
  app.add_option("--timeout-ms", options.timeout_ms, "per request and per connect")
      ->check(CLI::Range(1u, 3600000u));
  app.add_option("--threads,-t", options.threads, "generator threads, one event loop each")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--accounts", options.population.accounts, "accounts userNNNN@example.org")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  app.add_option("--compromised-share", options.population.compromised_share,
                 "share of accounts sending from random IPs worldwide with many recipients")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--unauthenticated-share", options.population.unauthenticated_share,
                 "share of messages without SASL login (empty sasl_username, port 25)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-recipients", options.population.max_recipients,
                 "recipients per message of a normal account: 1..this")
      ->check(CLI::Range(1u, 10000u));
  app.add_option("--max-recipients-compromised", options.population.max_recipients_compromised,
                 "recipients per message of a compromised account: 1..this")
      ->check(CLI::Range(1u, 10000u));
  app.add_option("--seed", options.population.seed, "random seed (population and request streams)");
  app.add_option("--server-pid", options.server_pid,
                 "also report this process's CPU over the measured window (/proc)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--quiet,-q", options.quiet, "print only the RESULT line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  return saslguard::bench::runLoad(options);
}
