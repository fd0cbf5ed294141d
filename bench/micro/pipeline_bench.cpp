// pipeline_bench.cpp — Pipeline::decide, the whole request path after parsing, with every
// detector (deny list, quota) on the embedded store (flusher running, 10,000 accounts prefilled,
// the compromised 1 % marked) and the load generator's request mix; the store's execute() alone;
// encoding one account record (what the flusher does per changed account, twice).
#include <benchmark/benchmark.h>

#include "engine/detectors/detectors.hpp"
#include "engine/pipeline.hpp"
#include "harness/harness.hpp"
#include "store/account_state.hpp"

#include <unordered_set>

namespace saslguard::bench {
namespace {

// Built once per process, on first use; the store is closed and its directory removed at exit.
struct Environment {
  TempDirectory dir{"saslguard-micro"};
  std::unique_ptr<store::EmbeddedStore> store = openStore(dir.path());
  engine::RecentDecisions recent{10000};
  Population population{PopulationSettings{}};  // as saslguard-load: 10,000 accounts, 1 % bad
  RequestCorpus corpus{population, 16384, 11};
  Population anonymous_population{[] {
    PopulationSettings settings;
    settings.unauthenticated_share = 1.0;
    return settings;
  }()};
  RequestCorpus anonymous{anonymous_population, 256, 12};
  engine::PipelinePtr configured;  // what the daemon runs: every detector that exists
  engine::PipelinePtr with_geo;    // the same plus the geo stand-in's set operation
  std::vector<std::size_t> mix, unmarked, marked;  // indices into corpus

  Environment() {
    discardLogLines();
    const auto now = Clock::now();
    std::unordered_set<std::string> compromised;
    for (std::uint64_t i = 0; i < population.size(); ++i) {
      const auto& account = population.account(i);
      prefillAccount(*store, account, now);
      if (!account.compromised) continue;
      store::Mark mark;
      mark.detector = "operator";
      mark.reason = "benchmark: marked compromised";
      mark.evidence = "{}";
      mark.action = "REJECT";
      if (!store->mark(account.address, mark, now)) std::abort();
      compromised.insert(account.address);
    }
    const auto settings = std::make_shared<const config::Settings>(benchSettings());
    configured = *engine::Pipeline::build(settings, *store, recent);
    auto detectors = *engine::buildDetectors(*settings);
    detectors.push_back({std::make_unique<GeoStandInDetector>(), false});
    with_geo = *engine::Pipeline::buildWith(settings, *store, recent, std::move(detectors));
    for (std::size_t i = 0; i < corpus.size(); ++i) {
      mix.push_back(i);
      const std::string account(corpus[i].get(protocol::Attr::sasl_username));
      (compromised.contains(account) ? marked : unmarked).push_back(i);
    }
  }
};

Environment& environment() {
  static Environment env;
  return env;
}

void runDecide(benchmark::State& state, const engine::Pipeline& pipeline,
               const RequestCorpus& corpus, const std::vector<std::size_t>& indices) {
  std::string reply;
  std::size_t next = static_cast<std::size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    reply.clear();
    const auto& request = corpus[indices[next++ % indices.size()]];
    benchmark::DoNotOptimize(pipeline.decide(request, Clock::now(), reply));
  }
  state.SetItemsProcessed(state.iterations());
}

// The generator's mix: ~8 % of requests come from the marked accounts (they send many recipients).
void BM_Decide_GeneratorMix(benchmark::State& state) {
  auto& env = environment();
  runDecide(state, *env.configured, env.corpus, env.mix);
}
BENCHMARK(BM_Decide_GeneratorMix)->Threads(1)->Threads(2)->UseRealTime();

// The common case: an authenticated account, not marked, not listed: DUNNO.
void BM_Decide_UnmarkedAccount(benchmark::State& state) {
  auto& env = environment();
  runDecide(state, *env.configured, env.corpus, env.unmarked);
}
BENCHMARK(BM_Decide_UnmarkedAccount);

// The registry path: the account is marked, the store short-circuits, REJECT is logged.
void BM_Decide_MarkedAccount(benchmark::State& state) {
  auto& env = environment();
  runDecide(state, *env.configured, env.corpus, env.marked);
}
BENCHMARK(BM_Decide_MarkedAccount);

// No SASL login: identity says "not ours" before anything else.
void BM_Decide_Unauthenticated(benchmark::State& state) {
  auto& env = environment();
  std::vector<std::size_t> all(env.anonymous.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  runDecide(state, *env.configured, env.anonymous, all);
}
BENCHMARK(BM_Decide_Unauthenticated);

// The generator's mix with a set touch per request as geo will add (quota already counts every
// END-OF-MESSAGE): more of the store's write path (distinct set, dirty tracking, journal).
void BM_Decide_WithGeoStandIn(benchmark::State& state) {
  auto& env = environment();
  runDecide(state, *env.with_geo, env.corpus, env.mix);
}
BENCHMARK(BM_Decide_WithGeoStandIn)->Threads(1)->Threads(2)->UseRealTime();

// Keeping the decision for operators: RecentDecisions at the daemon's default capacity (10,000),
// full, records as decide() builds them for the generator's accounts (a cold slot per add).
void BM_RecentDecisionsAdd(benchmark::State& state) {
  auto& env = environment();
  engine::RecentDecisions recent(10000);
  std::vector<engine::DecisionRecord> records;
  for (std::size_t i = 0; i < 4096; ++i) {
    const auto& request = env.corpus[i];
    engine::DecisionRecord record;
    record.at = Clock::now();
    record.account = request.get(protocol::Attr::sasl_username);
    record.stage = request.stage();
    record.instance = request.get(protocol::Attr::instance);
    record.client_address = request.get(protocol::Attr::client_address);
    record.outcome = "evaluated";
    records.push_back(std::move(record));
  }
  for (int i = 0; i < 20000; ++i) recent.add(records[i % records.size()]);
  std::size_t next = 0;
  for (auto _ : state) recent.add(records[next++ % records.size()]);  // a copy, as decide moves one
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecentDecisionsAdd);

// The store call of the pipeline today: the registry check with no counter or set operation.
void BM_StoreExecute_RegistryCheck(benchmark::State& state) {
  auto& env = environment();
  std::vector<store::Batch> batches;
  for (std::uint64_t i = 0; i < env.population.size(); ++i) {
    store::Batch batch;
    batch.account = env.population.account(i).address;
    batches.push_back(std::move(batch));
  }
  std::size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(env.store->execute(batches[next++ % batches.size()], Clock::now()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreExecute_RegistryCheck);

// The store call of a counted message: the quota counter and the geo stand-in's set.
void BM_StoreExecute_CounterAndSet(benchmark::State& state) {
  auto& env = environment();
  std::vector<store::Batch> batches;
  for (std::uint64_t i = 0; i < env.population.size(); ++i) {
    const auto& account = env.population.account(i);
    batches.push_back(stateBatch(account.address, account.home_addresses[i % 2].view()));
  }
  std::size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(env.store->execute(batches[next++ % batches.size()], Clock::now()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreExecute_CounterAndSet);

// The record of saslguard-scale's prefilled account: quota's counter with three buckets and a
// set of two home addresses.
void BM_EncodeAccountRecord(benchmark::State& state) {
  constexpr std::int64_t kNowS = 1'700'000'000;
  store::NameTable names;
  store::AccountState account;
  account.last_active_s = kNowS;
  account.counters.push_back(
      store::NamedWindow{*names.intern("quota:86400"), store::SlidingWindow(86400, 100)});
  account.sets.push_back(store::NamedSet{*names.intern("geo:ips"), store::DistinctSet{}});
  for (std::int64_t hours_ago : {20, 9, 1}) {
    account.counters[0].window.apply(1, std::nullopt, kNowS - hours_ago * 3600);
  }
  account.sets[0].set.touch("10.20.30.40", 30 * 86400, kNowS, 1024);
  account.sets[0].set.touch("198.51.100.23", 30 * 86400, kNowS, 1024);
  std::string out;
  for (auto _ : state) {
    out.clear();
    store::encodeAccount(account, names, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeAccountRecord);

}  // namespace
}  // namespace saslguard::bench
