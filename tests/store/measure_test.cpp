// measure_test.cpp — a quick cost report, not a benchmark and not a pass/fail test: CPU ns per
// execute() with 10k and 1M accounts, memory per account, and what group commits cost after a
// restart. Disabled by default; run with
//   ./tests/saslguard_store_tests --gtest_also_run_disabled_tests --gtest_filter='Measure.*'
#include <gtest/gtest.h>
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "store_test_util.hpp"

namespace saslguard::store::testing {
namespace {

long statusMb(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size())) / 1024;
  }
  return -1;
}

double threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double msSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

class Traffic {
 public:
  explicit Traffic(std::uint64_t accounts) : accounts_(accounts) {}
  // A request as the detectors will send it for account n: the day's quota, the client IP and
  // country (each account has its usual IP).
  const Batch& request(std::uint64_t n) {
    for (int i = 10; i >= 4; --i, n /= 10) request_.account[i] = static_cast<char>('0' + n % 10);
    request_.sets[0].value[11] = request_.account[10];
    return request_;
  }
  const Batch& randomRequest() { return request(next()); }
  const Batch& randomLookup() {  // an empty batch: the cost of finding the account alone
    lookup_.account = randomRequest().account;
    return lookup_;
  }

 private:
  std::uint64_t next() {
    random_ ^= random_ << 13;
    random_ ^= random_ >> 7;
    random_ ^= random_ << 17;
    return random_ % accounts_;
  }
  std::uint64_t accounts_;
  std::uint64_t random_ = 88172645463325252ull;
  Batch request_ =
      batch("user0000000@example.org", {counter("quota:86400", 1, 86400, 100)},
            {touch("geo:ips", "198.51.100.7", 86400), touch("geo:countries", "DE", 86400)});
  Batch lookup_ = batch("user0000000@example.org", {});
};

// CPU ns per call of `make()`'s batch, the fastest of three rounds (the machine is shared).
template <class Make>
double cpuNsPerCall(EmbeddedStore& store, Make make, std::int64_t first_s) {
  constexpr int kCalls = 1'000'000;
  double best = 1e18;
  for (int round = 0; round < 3; ++round) {
    const double start = threadCpuNs();
    for (int i = 0; i < kCalls; ++i) {
      if (!store.execute(make(), at(first_s + round * 1000 + i / 1000))) ADD_FAILURE();
    }
    best = std::min(best, (threadCpuNs() - start) / kCalls);
  }
  return best;
}

void measure(std::uint64_t accounts) {
  saslguard::testing::TempDir dir;
  EmbeddedStoreOptions o;
  o.dir = dir.path() / "state";
  o.start_flusher = false;
  o.max_accounts = 2 * static_cast<std::int64_t>(accounts);
  o.clock = [] { return at(4000); };
  Traffic traffic(accounts);
  const auto n = static_cast<unsigned long long>(accounts);
  {
    auto opened = EmbeddedStore::open(o);
    ASSERT_TRUE(opened);
    EmbeddedStore& store = **opened;
    const long anon_before = statusMb("RssAnon:");
    for (std::uint64_t i = 0; i < accounts; ++i) {
      ASSERT_TRUE(
          store.execute(traffic.request(i), at(static_cast<std::int64_t>(i * 3600 / accounts))));
    }
    const long anon_after = statusMb("RssAnon:");
    const double execute_ns = cpuNsPerCall(
        store, [&]() -> auto& { return traffic.randomRequest(); }, 3600);
    const double lookup_ns = cpuNsPerCall(
        store, [&]() -> auto& { return traffic.randomLookup(); }, 3600);
    std::printf(
        "[measure] %7llu accounts: execute %.0f ns CPU/call (quota counter + 2 set "
        "touches, random account), of which finding the account %.0f ns; maps %ld MB "
        "(%.0f bytes/account)\n",
        n, execute_ns, lookup_ns, anon_after - anon_before,
        static_cast<double>(anon_after - anon_before) * 1048576.0 / static_cast<double>(accounts));
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(store.flush());
    const double flush_ms = msSince(start);
    start = std::chrono::steady_clock::now();
    ASSERT_TRUE(store.close());
    std::printf(
        "[measure] %7llu accounts: journaling all of them at once %.0f ms; close() "
        "folding them into the accounts database %.0f ms\n",
        n, flush_ms, msSince(start));
  }
  malloc_trim(0);

  // A restart, then flush intervals in which 2% of the accounts were active.
  const long anon_before = statusMb("RssAnon:");
  const auto start = std::chrono::steady_clock::now();
  auto opened = EmbeddedStore::open(o);
  ASSERT_TRUE(opened);
  EmbeddedStore& store = **opened;
  const double load_ms = msSince(start);
  const long anon_loaded = statusMb("RssAnon:");
  const long file_loaded = statusMb("RssFile:");
  const std::uint64_t active = std::max<std::uint64_t>(1, accounts / 50);
  double flush_ms = 0;
  constexpr int kIntervals = 10;
  for (int interval = 0; interval < kIntervals; ++interval) {
    for (std::uint64_t i = 0; i < active; ++i) {
      ASSERT_TRUE(store.execute(traffic.randomRequest(), at(4000 + interval)));
    }
    const auto flush_start = std::chrono::steady_clock::now();
    ASSERT_TRUE(store.flush());
    flush_ms += msSince(flush_start);
  }
  std::printf(
      "[measure] %7llu accounts: restart loads in %.0f ms, RSS anon +%ld MB, file %ld MB; "
      "a commit of %llu active accounts takes %.0f ms; then RSS anon +%ld MB, file %ld "
      "MB\n",
      n, load_ms, anon_loaded - anon_before, file_loaded, static_cast<unsigned long long>(active),
      flush_ms / kIntervals, statusMb("RssAnon:") - anon_before, statusMb("RssFile:"));
  const auto close_start = std::chrono::steady_clock::now();
  ASSERT_TRUE(store.close());
  std::printf("[measure] %7llu accounts: close() folding the %d intervals' changes %.0f ms\n", n,
              kIntervals, msSince(close_start));
}

TEST(Measure, DISABLED_ExecuteCostAndMemory) {
  measure(10'000);
  measure(1'000'000);
}

}  // namespace
}  // namespace saslguard::store::testing
