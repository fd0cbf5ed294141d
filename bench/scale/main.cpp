// main.cpp — saslguard-scale: how the embedded store's per-request cost and memory grow with the
// number of tracked accounts. Prefills N accounts through the store (the quota detector's 24 h
// counter with three buckets used, a geo set of two addresses), then times Pipeline::decide and
// Store::execute on accounts drawn uniformly.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "engine/detectors/detectors.hpp"
#include "engine/pipeline.hpp"
#include "harness/harness.hpp"
#include "protocol/parser.hpp"

namespace saslguard::bench {
namespace {

struct ScaleOptions {
  std::uint64_t accounts = 10000;
  std::uint64_t requests = 500000;
  std::string state_dir;  // empty: a temporary directory
  std::uint64_t seed = 1;
};

using Steady = std::chrono::steady_clock;

double secondsSince(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

double cpuSeconds(clockid_t clock) {  // CLOCK_THREAD_CPUTIME_ID or CLOCK_PROCESS_CPUTIME_ID
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Time spent in a phase: wall and CPU of the calling thread around the timed calls only, and
// the CPU the other threads (the store's flusher) used meanwhile, which the requests caused too.
struct PhaseTimes {
  std::uint64_t requests = 0;
  double wall_s = 0, thread_cpu_s = 0, background_cpu_s = 0;
  double process_start_s = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  double thread_start_s = cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
  void end() {
    background_cpu_s = std::max(0.0, (cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - process_start_s) -
                                         (cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - thread_start_s));
  }
  double ns(double seconds) const { return seconds * 1e9 / static_cast<double>(requests); }
};

// The load generator's traffic, generated and parsed in rounds of kRound requests so that only
// the decisions are timed, while the accounts still come uniformly from the whole population.
class RequestRounds {
 public:
  static constexpr std::size_t kRound = 1024;

  RequestRounds(const Population& population, std::uint64_t seed) : requests_(kRound) {
    for (std::uint32_t id = 0; id < 16; ++id) streams_.emplace_back(population, seed, id);
  }

  const std::vector<protocol::Request>& next() {
    text_.clear();
    for (std::size_t i = 0; i < kRound; ++i) streams_[i % streams_.size()].appendNextRequest(text_);
    std::string_view rest = text_;
    for (auto& request : requests_) {
      const auto outcome = parser_.parse(rest, request);
      if (outcome.status != protocol::ParseStatus::Complete) std::abort();
      rest.remove_prefix(outcome.consumed);
    }
    return requests_;
  }

 private:
  std::vector<TransactionStream> streams_;
  std::string text_;
  protocol::RequestParser parser_;
  std::vector<protocol::Request> requests_;
};

int runScale(const ScaleOptions& options) {
  discardLogLines();
  PopulationSettings population_settings;
  population_settings.accounts = options.accounts;
  population_settings.seed = options.seed;
  const Population population(population_settings);

  std::unique_ptr<TempDirectory> temp;
  std::filesystem::path dir = options.state_dir;
  if (dir.empty()) {
    temp = std::make_unique<TempDirectory>("saslguard-scale");
    dir = temp->path();
  }
  auto store = openStore(dir, std::max<std::int64_t>(2'000'000, options.accounts * 2));

  // Memory: everything allocated from here on is the store's (the population is above).
  const auto before = readMemoryUsage();
  const auto prefill_start = Steady::now();
  const auto now = Clock::now();
  for (std::uint64_t i = 0; i < population.size(); ++i) {
    prefillAccount(*store, population.account(i), now);
  }
  const double prefill_s = secondsSince(prefill_start);
  if (auto flushed = store->flush(); !flushed) {
    std::fprintf(stderr, "saslguard-scale: flush failed: %s\n", flushed.error().message.c_str());
    return 1;
  }
  const auto after = readMemoryUsage();
  const auto tracked = store->stats().accounts;

  // Per request: the whole decision (every configured detector plus the geo stand-in).
  engine::RecentDecisions recent(10000);
  const auto settings = std::make_shared<const config::Settings>(benchSettings());
  auto detectors = *engine::buildDetectors(*settings);
  detectors.push_back({std::make_unique<GeoStandInDetector>(), false});
  const auto pipeline =
      *engine::Pipeline::buildWith(settings, *store, recent, std::move(detectors));
  RequestRounds rounds(population, options.seed + 1);
  std::string reply;
  const auto decideRound = [&](const std::vector<protocol::Request>& requests) {
    for (const auto& request : requests) {
      reply.clear();
      pipeline->decide(request, Clock::now(), reply);
    }
  };
  for (int i = 0; i < 16; ++i) decideRound(rounds.next());  // warm up: caches, allocator
  PhaseTimes decide;
  while (decide.requests < options.requests) {
    const auto& requests = rounds.next();
    const auto start = Steady::now();
    const double thread_start = cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    decideRound(requests);
    decide.thread_cpu_s += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - thread_start;
    decide.wall_s += secondsSince(start);
    decide.requests += requests.size();
  }
  decide.end();

  // Per request: the store call alone, on accounts drawn uniformly.
  FastRandom random(options.seed + 2);
  std::vector<store::Batch> batches;
  PhaseTimes execute;
  while (execute.requests < options.requests) {
    batches.clear();
    for (std::size_t i = 0; i < RequestRounds::kRound; ++i) {
      const auto& account = population.account(random.below(population.size()));
      batches.push_back(stateBatch(account.address, account.home_addresses[i % 2].view()));
    }
    const auto start = Steady::now();
    const double thread_start = cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    for (const auto& batch : batches) {
      if (!store->execute(batch, Clock::now())) std::abort();
    }
    execute.thread_cpu_s += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - thread_start;
    execute.wall_s += secondsSince(start);
    execute.requests += batches.size();
  }
  execute.end();
  const auto end = readMemoryUsage();

  // What stopping costs: the store writes everything pending (the daemon does this on SIGTERM).
  const auto close_start = Steady::now();
  if (auto closed = store->close(); !closed) {
    std::fprintf(stderr, "saslguard-scale: close failed: %s\n", closed.error().message.c_str());
    return 1;
  }
  const double close_s = secondsSince(close_start);

  const auto n = static_cast<double>(options.accounts);
  const auto mb = [](std::int64_t kb) { return static_cast<double>(kb) / 1024.0; };
  std::printf(
      "RESULT accounts=%llu tracked=%llu prefill_s=%.2f rss_delta_mb=%.1f anon_delta_mb=%.1f "
      "file_delta_mb=%.1f rss_bytes_per_account=%.0f anon_bytes_per_account=%.0f "
      "decide_ns=%.0f decide_cpu_ns=%.0f decide_background_cpu_ns=%.0f execute_ns=%.0f "
      "execute_cpu_ns=%.0f execute_background_cpu_ns=%.0f rss_end_mb=%.1f hwm_mb=%.1f "
      "population_mb=%.1f close_s=%.2f\n",
      static_cast<unsigned long long>(options.accounts), static_cast<unsigned long long>(tracked),
      prefill_s, mb(after.rss_kb - before.rss_kb), mb(after.anon_kb - before.anon_kb),
      mb(after.file_kb - before.file_kb),
      static_cast<double>(after.rss_kb - before.rss_kb) * 1024.0 / n,
      static_cast<double>(after.anon_kb - before.anon_kb) * 1024.0 / n, decide.ns(decide.wall_s),
      decide.ns(decide.thread_cpu_s), decide.ns(decide.background_cpu_s),
      execute.ns(execute.wall_s), execute.ns(execute.thread_cpu_s),
      execute.ns(execute.background_cpu_s), mb(end.rss_kb), mb(end.hwm_kb), mb(before.rss_kb),
      close_s);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace saslguard::bench

int main(int argc, char** argv) {
  saslguard::bench::ScaleOptions options;
  CLI::App app{
      "saslguard-scale — per-request cost and memory of the embedded store with N tracked "
      "accounts.\nPrints one RESULT line: RSS growth per account after the prefill, and ns per "
      "Pipeline::decide and per Store::execute.",
      "saslguard-scale"};
  app.option_defaults()->always_capture_default();
  app.add_option("--accounts,-a", options.accounts, "tracked accounts to prefill")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100000000}));
  app.add_option("--requests,-n", options.requests, "timed requests (decide, then execute)")
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1000000000}));
  app.add_option("--state-dir", options.state_dir, "store directory; default a temporary one");
  app.add_option("--seed", options.seed, "population and request streams");
  CLI11_PARSE(app, argc, argv);
  return saslguard::bench::runScale(options);
}
