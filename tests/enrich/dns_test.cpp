// dns_test.cpp — the c-ares resolver against a real rbldnsd on loopback: listed and unlisted
// IPv4, IPv6 and hashed-recipient names, caching (positive, negative, TTL expiry after a zone
// reload), merged concurrent lookups, timeouts, SERVFAIL/REFUSED from a fake server, shutdown,
// one socket kept between queries without keeping an idle event loop busy.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "enrich/dns.hpp"
#include "enrich/dns_cache.hpp"
#include "metrics/metrics.hpp"
#include "support/rbldnsd.hpp"

namespace saslguard::enrich {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ipv4;
using testing::Rbldnsd;
using testing::RbldnsdZone;
using SteadyClock = std::chrono::steady_clock;

// Abusix-style zones: the key is the first label under the zone.
constexpr char kIpZone[] = "testkey.authbl.test";
constexpr char kRecipientZone[] = "testkey.authbl-rcpt.test";

std::uint64_t counter(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

// Counters are process-wide; each test looks at how much they moved.
struct CounterDeltas {
  std::uint64_t queries = counter("dns_queries_total");
  std::uint64_t hits = counter("dns_cache_hits_total");
  std::uint64_t merged = counter("dns_merged_total");
  std::uint64_t timeouts = counter("dns_timeouts_total");
  std::uint64_t failures = counter("dns_failures_total");
  std::uint64_t queriesSent() const { return counter("dns_queries_total") - queries; }
  std::uint64_t cacheHits() const { return counter("dns_cache_hits_total") - hits; }
  std::uint64_t mergedLookups() const { return counter("dns_merged_total") - merged; }
  std::uint64_t timedOut() const { return counter("dns_timeouts_total") - timeouts; }
  std::uint64_t failed() const { return counter("dns_failures_total") - failures; }
};

std::string ipQuery(const std::string& address) {
  return *reversedAddress(address) + "." + kIpZone;
}

// Runs lookups of `names` concurrently on `context` (one coroutine each) until all complete or
// `bound` passes; a lookup that never completes fails the test.
std::vector<DnsAnswer> lookUpTogether(asio::io_context& context, DnsResolver& resolver,
                                      const std::vector<std::string>& names,
                                      milliseconds bound = seconds(20)) {
  std::vector<DnsAnswer> answers(names.size());
  std::size_t completed = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    asio::co_spawn(context, resolver.resolve(names[i]),
                   [&, i](std::exception_ptr error, DnsAnswer answer) {
                     if (error) std::rethrow_exception(error);
                     answers[i] = std::move(answer);
                     // Stop here: a query that outlived its lookup (after the deadline) would
                     // keep the context busy.
                     if (++completed == names.size()) context.stop();
                   });
  }
  context.restart();
  context.run_for(bound);
  EXPECT_EQ(completed, names.size()) << "lookups still pending after " << bound.count() << " ms";
  return answers;
}

// Sockets this process has open (UDP or TCP), from /proc/self/fd.
std::size_t openSockets() {
  std::size_t sockets = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    const auto target = std::filesystem::read_symlink(entry.path(), error);
    if (!error && target.string().starts_with("socket:")) ++sockets;
  }
  return sockets;
}

// How long `context` runs before it is out of work (bounded by `bound`).
milliseconds runUntilIdle(asio::io_context& context, milliseconds bound) {
  const auto start = SteadyClock::now();
  context.restart();
  context.run_for(bound);
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
}

DnsAnswer lookUp(asio::io_context& context, DnsResolver& resolver, const std::string& name) {
  return lookUpTogether(context, resolver, {name}).front();
}

std::unique_ptr<DnsResolver> makeResolver(asio::io_context& context, DnsOptions options,
                                          std::shared_ptr<DnsCache> cache = nullptr) {
  if (!cache) cache = makeDnsCache(options);
  auto resolver = DnsResolver::create(context, options, std::move(cache));
  if (!resolver) throw std::runtime_error(resolver.error().message);
  return std::move(*resolver);
}

std::vector<RbldnsdZone> abusixLikeZones() {
  return {
      {kIpZone, "ip4set", "authbl.ip4set",
       "$TTL 60\n"
       ":127.0.0.4:Listed by the test zone\n"
       "127.0.0.2\n"                // Abusix's IPv4 test point: listed, answers 127.0.0.4
       "192.0.2.0/24\n"             //
       "198.51.100.9 :10.0.0.1:\n"  // a broken zone answering outside 127/8
       "203.0.113.5 :127.0.0.2:\n"
       "203.0.113.5 :127.0.0.3:\n"},  // two codes for one address
      {kIpZone, "ip6trie", "authbl.ip6trie",
       "$TTL 60\n"
       ":127.0.0.4:\n"
       "2001:db8::7\n"},
      {kRecipientZone, "dnset", "rcpt.dnset",
       "$TTL 60\n"
       ":127.0.0.4:\n" +
           sha1Hex("victim@example.org") + "\n"},
  };
}

// One rbldnsd for the tests that only read the zones; each test uses its own cache.
class DnsResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      server_ = new Rbldnsd(abusixLikeZones());
    } catch (const std::exception& error) {
      setup_error_ = error.what();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (server_ == nullptr) FAIL() << "rbldnsd did not start: " << setup_error_;
  }

  DnsOptions options() const {
    DnsOptions options;
    options.servers = {server_->server()};
    options.timeout = milliseconds(1000);
    options.tries = 2;
    return options;
  }

  static Rbldnsd* server_;
  static std::string setup_error_;
  asio::io_context context_;
};
Rbldnsd* DnsResolverTest::server_ = nullptr;
std::string DnsResolverTest::setup_error_;

TEST_F(DnsResolverTest, FindsAListedIpv4Address) {
  auto resolver = makeResolver(context_, options());
  const auto answer = lookUp(context_, *resolver, ipQuery("127.0.0.2"));
  EXPECT_EQ(answer.status, DnsStatus::kFound) << answer.error;
  EXPECT_EQ(answer.addresses, std::vector<std::uint32_t>{0x7f000004});
  EXPECT_FALSE(answer.from_cache);
  EXPECT_TRUE(answer.error.empty());

  const auto range = lookUp(context_, *resolver, ipQuery("192.0.2.77"));
  EXPECT_EQ(range.status, DnsStatus::kFound);
  EXPECT_EQ(range.addresses, std::vector<std::uint32_t>{ipv4("127.0.0.4")});
}

TEST_F(DnsResolverTest, ReportsAnUnlistedAddressAsNotFound) {
  auto resolver = makeResolver(context_, options());
  // 127.0.0.1 is Abusix's "never listed" test point.
  const auto answer = lookUp(context_, *resolver, ipQuery("127.0.0.1"));
  EXPECT_EQ(answer.status, DnsStatus::kNotFound) << answer.error;
  EXPECT_TRUE(answer.addresses.empty());
  EXPECT_TRUE(answer.error.empty());
}

TEST_F(DnsResolverTest, ReturnsEveryAddressOfAMultiCodeListing) {
  auto resolver = makeResolver(context_, options());
  auto answer = lookUp(context_, *resolver, ipQuery("203.0.113.5"));
  ASSERT_EQ(answer.status, DnsStatus::kFound);
  std::sort(answer.addresses.begin(), answer.addresses.end());
  EXPECT_EQ(answer.addresses, (std::vector<std::uint32_t>{ipv4("127.0.0.2"), ipv4("127.0.0.3")}));
}

TEST_F(DnsResolverTest, FindsAListedIpv6Address) {
  auto resolver = makeResolver(context_, options());
  const auto answer = lookUp(context_, *resolver, ipQuery("2001:db8::7"));
  EXPECT_EQ(answer.status, DnsStatus::kFound) << answer.error;
  EXPECT_EQ(answer.addresses, std::vector<std::uint32_t>{0x7f000004});
  EXPECT_EQ(lookUp(context_, *resolver, ipQuery("2001:db8::8")).status, DnsStatus::kNotFound);
}

TEST_F(DnsResolverTest, FindsAHashedRecipient) {
  auto resolver = makeResolver(context_, options());
  const auto listed =
      lookUp(context_, *resolver, sha1Hex("victim@example.org") + "." + kRecipientZone);
  EXPECT_EQ(listed.status, DnsStatus::kFound) << listed.error;
  EXPECT_EQ(listed.addresses, std::vector<std::uint32_t>{0x7f000004});
  const auto other =
      lookUp(context_, *resolver, sha1Hex("someone@example.org") + "." + kRecipientZone);
  EXPECT_EQ(other.status, DnsStatus::kNotFound);
}

TEST_F(DnsResolverTest, ReturnsAnAnswerOutside127AsFoundForTheCallerToJudge) {
  auto resolver = makeResolver(context_, options());
  const auto answer = lookUp(context_, *resolver, ipQuery("198.51.100.9"));
  EXPECT_EQ(answer.status, DnsStatus::kFound) << answer.error;
  EXPECT_EQ(answer.addresses, std::vector<std::uint32_t>{ipv4("10.0.0.1")});
}

TEST_F(DnsResolverTest, AnswersTheSecondLookupFromTheCache) {
  auto resolver = makeResolver(context_, options());
  const CounterDeltas counters;
  const auto name = ipQuery("127.0.0.2");
  EXPECT_FALSE(resolver->cached(name));
  const auto first = lookUp(context_, *resolver, name);
  const auto second = lookUp(context_, *resolver, name);
  EXPECT_FALSE(first.from_cache);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.status, DnsStatus::kFound);
  EXPECT_EQ(second.addresses, first.addresses);
  // Any case, with or without the trailing dot: the same name.
  std::string shouted = name + ".";
  std::transform(shouted.begin(), shouted.end(), shouted.begin(), ::toupper);
  EXPECT_TRUE(lookUp(context_, *resolver, shouted).from_cache);
  const auto probe = resolver->cached(name);
  ASSERT_TRUE(probe);
  EXPECT_TRUE(probe->from_cache);
  EXPECT_EQ(counters.queriesSent(), 1u);
  EXPECT_EQ(counters.cacheHits(), 3u);
}

TEST_F(DnsResolverTest, SharesTheCacheBetweenWorkersResolvers) {
  auto cache = makeDnsCache(options());
  asio::io_context other_worker;
  auto first = makeResolver(context_, options(), cache);
  auto second = makeResolver(other_worker, options(), cache);
  const CounterDeltas counters;
  EXPECT_FALSE(lookUp(context_, *first, ipQuery("127.0.0.2")).from_cache);
  EXPECT_TRUE(lookUp(other_worker, *second, ipQuery("127.0.0.2")).from_cache);
  EXPECT_EQ(counters.queriesSent(), 1u);
}

TEST_F(DnsResolverTest, CachesNegativeAnswers) {
  auto resolver = makeResolver(context_, options());
  const CounterDeltas counters;
  const auto first = lookUp(context_, *resolver, ipQuery("127.0.0.1"));
  const auto second = lookUp(context_, *resolver, ipQuery("127.0.0.1"));
  EXPECT_EQ(first.status, DnsStatus::kNotFound);
  EXPECT_EQ(second.status, DnsStatus::kNotFound);
  EXPECT_FALSE(first.from_cache);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(counters.queriesSent(), 1u);
}

TEST_F(DnsResolverTest, KeepsAnswersNoLongerThanMaxTtlAndNegativeTtl) {
  auto settings = options();
  settings.max_ttl = seconds(1);       // the zone says 60
  settings.negative_ttl = seconds(1);  // the zone has no SOA
  auto resolver = makeResolver(context_, settings);
  const CounterDeltas counters;
  const auto listed = ipQuery("127.0.0.2");
  const auto unlisted = ipQuery("127.0.0.1");
  lookUpTogether(context_, *resolver, {listed, unlisted});
  const auto cached_at = SteadyClock::now();
  ASSERT_EQ(counters.queriesSent(), 2u);
  std::this_thread::sleep_until(cached_at + milliseconds(1100));
  const auto answers = lookUpTogether(context_, *resolver, {listed, unlisted});
  EXPECT_FALSE(answers[0].from_cache);
  EXPECT_EQ(answers[0].status, DnsStatus::kFound);
  EXPECT_FALSE(answers[1].from_cache);
  EXPECT_EQ(answers[1].status, DnsStatus::kNotFound);
  EXPECT_EQ(counters.queriesSent(), 4u);
}

TEST_F(DnsResolverTest, MergesConcurrentLookupsOfOneNameIntoOneQuery) {
  auto resolver = makeResolver(context_, options());
  const CounterDeltas counters;
  const std::vector<std::string> names(20, ipQuery("192.0.2.20"));
  const auto answers = lookUpTogether(context_, *resolver, names);
  for (const auto& answer : answers) {
    EXPECT_EQ(answer.status, DnsStatus::kFound) << answer.error;
    EXPECT_EQ(answer.addresses, std::vector<std::uint32_t>{0x7f000004});
    EXPECT_FALSE(answer.from_cache);
  }
  EXPECT_EQ(counters.queriesSent(), 1u);
  EXPECT_EQ(counters.mergedLookups(), 19u);
}

TEST_F(DnsResolverTest, ResolvesDifferentNamesConcurrently) {
  auto resolver = makeResolver(context_, options());
  const CounterDeltas counters;
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) names.push_back(ipQuery("192.0.2." + std::to_string(i)));
  for (int i = 0; i < 50; ++i) names.push_back(ipQuery("198.18.0." + std::to_string(i)));
  const auto answers = lookUpTogether(context_, *resolver, names);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    EXPECT_EQ(answers[i].status, i < 50 ? DnsStatus::kFound : DnsStatus::kNotFound)
        << names[i] << ": " << answers[i].error;
  }
  EXPECT_EQ(counters.queriesSent(), 100u);
}

TEST_F(DnsResolverTest, FailsOverToTheNextServerWhenOneDoesNotAnswer) {
  testing::SilentUdpPort black_hole;
  auto settings = options();
  settings.servers = {black_hole.server(), server_->server()};
  settings.timeout = milliseconds(500);
  auto resolver = makeResolver(context_, settings);
  // The lookup's deadline (2 x 500 ms) leaves room for one try per server only.
  const auto answer = lookUp(context_, *resolver, ipQuery("127.0.0.2"));
  EXPECT_EQ(answer.status, DnsStatus::kFound) << answer.error;
}

TEST_F(DnsResolverTest, WorkersOnTheirOwnThreadsShareOneCache) {
  auto cache = makeDnsCache(options());
  std::vector<std::string> names;
  for (int i = 0; i < 100; ++i) {
    names.push_back(ipQuery((i % 2 == 0 ? "192.0.2." : "198.18.1.") + std::to_string(i)));
  }
  const CounterDeltas counters;
  std::vector<std::vector<DnsAnswer>> answers(2);
  std::vector<std::thread> workers;
  for (std::size_t worker = 0; worker < answers.size(); ++worker) {
    workers.emplace_back([&, worker] {
      asio::io_context context;
      auto resolver = makeResolver(context, options(), cache);
      answers[worker] = lookUpTogether(context, *resolver, names);
    });
  }
  for (auto& worker : workers) worker.join();
  for (const auto& worker_answers : answers) {
    ASSERT_EQ(worker_answers.size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(worker_answers[i].status, i % 2 == 0 ? DnsStatus::kFound : DnsStatus::kNotFound)
          << names[i] << ": " << worker_answers[i].error;
    }
  }
  // Each worker asks at most once per name; what one learnt first the other may take from the
  // cache.
  EXPECT_GE(counters.queriesSent(), names.size());
  EXPECT_LE(counters.queriesSent(), 2 * names.size());
  EXPECT_EQ(counters.queriesSent() + counters.cacheHits(), 2 * names.size());
  EXPECT_EQ(cache->size(), names.size());
}

TEST_F(DnsResolverTest, FailsAtOnceOnANameDnsCannotCarry) {
  auto resolver = makeResolver(context_, options());
  const CounterDeltas counters;
  const auto start = SteadyClock::now();
  const auto answer = lookUp(context_, *resolver, std::string(64, 'a') + "." + kIpZone);
  EXPECT_EQ(answer.status, DnsStatus::kFailed);
  EXPECT_FALSE(answer.error.empty());
  EXPECT_LT(SteadyClock::now() - start, milliseconds(500)) << "c-ares refuses it before sending";
  EXPECT_EQ(counters.failed(), 1u);
  // The resolver is still usable, also for the same name's well-formed neighbours.
  EXPECT_EQ(lookUp(context_, *resolver, ipQuery("127.0.0.2")).status, DnsStatus::kFound);
}

TEST_F(DnsResolverTest, CachedLookupsAreCheap) {
  auto resolver = makeResolver(context_, options());
  const auto name = ipQuery("127.0.0.2");
  ASSERT_EQ(lookUp(context_, *resolver, name).status, DnsStatus::kFound);

  constexpr int kProbes = 200000;
  auto start = SteadyClock::now();
  for (int i = 0; i < kProbes; ++i) ASSERT_TRUE(resolver->cached(name));
  const auto probe_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - start).count() /
      kProbes;

  constexpr int kAwaits = 100000;
  int hits = 0;
  asio::co_spawn(
      context_,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < kAwaits; ++i) hits += (co_await resolver->resolve(name)).from_cache;
        context_.stop();
      },
      asio::detached);
  start = SteadyClock::now();
  context_.restart();
  context_.run_for(seconds(30));
  const auto await_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - start).count() /
      kAwaits;
  EXPECT_EQ(hits, kAwaits);
  std::cout << "[ measure  ] cached(): " << probe_ns
            << " ns, co_await resolve() on a hit: " << await_ns << " ns\n";
  EXPECT_LT(probe_ns, 50000);  // a lock, a hash and a copy; the bound only catches a blunder
}

TEST_F(DnsResolverTest, KeepsOneSocketOpenBetweenQueries) {
  auto resolver = makeResolver(context_, options());
  const auto before = openSockets();
  const CounterDeltas counters;
  EXPECT_EQ(lookUp(context_, *resolver, ipQuery("127.0.0.2")).status, DnsStatus::kFound);
  const auto after_first = openSockets();
  EXPECT_EQ(after_first, before + 1) << "the query's socket stays open";
  for (const char* address : {"192.0.2.1", "192.0.2.2", "10.9.9.9"}) {
    EXPECT_NE(lookUp(context_, *resolver, ipQuery(address)).status, DnsStatus::kFailed);
    EXPECT_EQ(openSockets(), after_first) << "the next query reuses it";
  }
  EXPECT_EQ(counters.queriesSent(), 4u);
  resolver->shutdown();
  EXPECT_EQ(openSockets(), before) << "shutdown closes it";
}

TEST_F(DnsResolverTest, LeavesAnIdleLoopNothingToWaitFor) {
  auto resolver = makeResolver(context_, options());
  EXPECT_EQ(lookUp(context_, *resolver, ipQuery("127.0.0.2")).status, DnsStatus::kFound);
  // The socket is open but not watched while no query is in flight: run() returns.
  EXPECT_LT(runUntilIdle(context_, seconds(5)), seconds(1));
  // And the next query is watched again.
  EXPECT_EQ(lookUp(context_, *resolver, ipQuery("192.0.2.7")).status, DnsStatus::kFound);
  EXPECT_LT(runUntilIdle(context_, seconds(5)), seconds(1));
}

TEST(DnsResolver, LeavesTheLoopNothingToWaitForOnceATimedOutQueryIsGivenUp) {
  testing::SilentUdpPort black_hole;
  asio::io_context context;
  DnsOptions options;
  options.servers = {black_hole.server()};
  options.timeout = milliseconds(100);
  options.tries = 2;  // c-ares gives up after 100 + 200 ms
  auto resolver = makeResolver(context, options);
  EXPECT_EQ(lookUp(context, *resolver, "2.0.0.127.testkey.authbl.test").status,
            DnsStatus::kTimeout);
  EXPECT_LT(runUntilIdle(context, seconds(10)), seconds(2));
  // The kept socket still works for the next query (it times out the same way).
  EXPECT_EQ(lookUp(context, *resolver, "3.0.0.127.testkey.authbl.test").status,
            DnsStatus::kTimeout);
}

TEST(Rbldnsd, AnswersAndIsGoneAfterwards) {
  pid_t pid = -1;
  {
    Rbldnsd server({{"x.test", "ip4set", "x.ip4set", ":127.0.0.2:\n192.0.2.1\n"}});
    pid = server.pid();
    const auto reply = testing::queryA(server.port(), "1.2.0.192.x.test");
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->addresses, std::vector<std::uint32_t>{ipv4("127.0.0.2")});
    EXPECT_EQ(testing::queryA(server.port(), "2.2.0.192.x.test")->rcode, 3);  // NXDOMAIN
  }
  EXPECT_NE(::kill(pid, 0), 0) << "rbldnsd was stopped and reaped by its PID";
}

TEST(DnsResolver, AsksAServerOverIpv6) {
  Rbldnsd server({{"v6.test", "ip4set", "v6.ip4set", ":127.0.0.4:\n127.0.0.2\n"}}, true);
  asio::io_context context;
  DnsOptions options;
  options.servers = {server.serverIpv6()};
  auto resolver = makeResolver(context, options);
  const auto answer = lookUp(context, *resolver, "2.0.0.127.v6.test");
  EXPECT_EQ(answer.status, DnsStatus::kFound) << answer.error;
  EXPECT_EQ(answer.addresses, std::vector<std::uint32_t>{0x7f000004});
}

TEST(DnsResolver, SeesANewAnswerOnceTheTtlHasPassed) {
  Rbldnsd server({{"ttl.test", "ip4set", "ttl.ip4set", "$TTL 2\n:127.0.0.2:\n192.0.2.1\n"}});
  asio::io_context context;
  DnsOptions options;
  options.servers = {server.server()};
  auto resolver = makeResolver(context, options);
  const std::string name = "1.2.0.192.ttl.test";

  const auto first = lookUp(context, *resolver, name);
  const auto cached_at = SteadyClock::now();
  ASSERT_EQ(first.addresses, std::vector<std::uint32_t>{ipv4("127.0.0.2")}) << first.error;

  server.rewrite("ttl.ip4set", "$TTL 2\n:127.0.0.3:\n192.0.2.1\n");
  ASSERT_TRUE(server.waitForAnswer(name, ipv4("127.0.0.3"))) << server.log();
  const auto within_ttl = lookUp(context, *resolver, name);
  if (SteadyClock::now() - cached_at < milliseconds(1500)) {  // a slow reload would pass the TTL
    EXPECT_TRUE(within_ttl.from_cache);
    EXPECT_EQ(within_ttl.addresses, std::vector<std::uint32_t>{ipv4("127.0.0.2")});
  }

  std::this_thread::sleep_until(cached_at + milliseconds(2200));
  const auto after_ttl = lookUp(context, *resolver, name);
  EXPECT_FALSE(after_ttl.from_cache);
  EXPECT_EQ(after_ttl.addresses, std::vector<std::uint32_t>{ipv4("127.0.0.3")});
}

TEST(DnsResolver, KeepsANegativeAnswerNoLongerThanTheSoaMinimum) {
  // SOA: ttl 60, minimum 1 s, so NXDOMAIN is cacheable for 1 s although negative_ttl says 300.
  Rbldnsd server({{"soa.test", "ip4set", "soa.ip4set",
                   "$SOA 60 ns.soa.test admin.soa.test 1 1h 1h 1d 1\n:127.0.0.2:\n192.0.2.1\n"}});
  asio::io_context context;
  DnsOptions options;
  options.servers = {server.server()};
  options.negative_ttl = seconds(300);
  auto resolver = makeResolver(context, options);
  const std::string name = "9.2.0.192.soa.test";
  const CounterDeltas counters;

  EXPECT_EQ(lookUp(context, *resolver, name).status, DnsStatus::kNotFound);
  const auto cached_at = SteadyClock::now();
  const auto again = lookUp(context, *resolver, name);
  EXPECT_EQ(again.status, DnsStatus::kNotFound);
  if (SteadyClock::now() - cached_at < milliseconds(800)) {
    EXPECT_TRUE(again.from_cache);
  }
  std::this_thread::sleep_until(cached_at + milliseconds(1200));
  const auto expired = lookUp(context, *resolver, name);
  EXPECT_EQ(expired.status, DnsStatus::kNotFound);
  EXPECT_FALSE(expired.from_cache);
  EXPECT_EQ(counters.queriesSent(), 2u);
}

TEST(DnsResolver, TimesOutAgainstAServerThatNeverAnswers) {
  testing::SilentUdpPort black_hole;
  asio::io_context context;
  DnsOptions options;
  options.servers = {black_hole.server()};
  options.timeout = milliseconds(200);
  options.tries = 2;
  auto resolver = makeResolver(context, options);
  const CounterDeltas counters;

  const auto start = SteadyClock::now();
  const auto answer = lookUp(context, *resolver, "2.0.0.127.testkey.authbl.test");
  const auto elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  std::cout << "[ measure  ] timeout with 2 tries of 200 ms: " << elapsed.count() << " ms\n";
  EXPECT_EQ(answer.status, DnsStatus::kTimeout);
  EXPECT_FALSE(answer.error.empty());
  EXPECT_GE(elapsed, milliseconds(380));
  EXPECT_LT(elapsed, seconds(3));
  EXPECT_EQ(counters.timedOut(), 1u);
  EXPECT_FALSE(resolver->cached("2.0.0.127.testkey.authbl.test")) << "timeouts are not cached";
}

// The reputation detector asks the client-address zone, then the recipient zone, one after the
// other on one resolver. With the server frozen, the second lookup used to wait its whole
// budget too: the request took 2 x timeout x tries.
TEST(DnsResolver, AfterATimeoutTheNextLookupFailsAtOnceWhileTheServerStaysSilent) {
  Rbldnsd server(abusixLikeZones());
  asio::io_context context;
  DnsOptions options;
  options.servers = {server.server()};
  options.timeout = milliseconds(300);
  options.tries = 2;
  const auto budget = options.timeout * options.tries;
  auto resolver = makeResolver(context, options);
  ASSERT_EQ(lookUp(context, *resolver, ipQuery("127.0.0.3")).status, DnsStatus::kNotFound);

  ::kill(server.pid(), SIGSTOP);
  // The signal is delivered asynchronously: a query sent before rbldnsd is stopped would be
  // answered.
  const auto stat = "/proc/" + std::to_string(server.pid()) + "/stat";
  for (int i = 0; i < 200; ++i) {
    std::ifstream in(stat);
    std::string line;
    std::getline(in, line);
    if (const auto close = line.rfind(')');
        close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'T') {
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  const CounterDeltas counters;
  std::vector<DnsAnswer> answers;
  const auto start = SteadyClock::now();
  milliseconds first_took{0};
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        answers.push_back(co_await resolver->resolve(ipQuery("127.0.0.2")));
        first_took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
        answers.push_back(
            co_await resolver->resolve(sha1Hex("victim@example.org") + "." + kRecipientZone));
      },
      [&](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
        context.stop();
      });
  context.restart();
  context.run_for(seconds(10));
  const auto elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  std::cout << "[ measure  ] two zones one after the other, server frozen, budget "
            << budget.count() << " ms: " << elapsed.count() << " ms (the first "
            << first_took.count() << " ms)\n";
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].status, DnsStatus::kTimeout);
  EXPECT_EQ(answers[1].status, DnsStatus::kTimeout);
  EXPECT_NE(answers[1].error.find("unresponsive"), std::string::npos) << answers[1].error;
  EXPECT_GE(elapsed, budget - milliseconds(20));
  EXPECT_LT(elapsed, budget + milliseconds(200));
  EXPECT_EQ(counters.timedOut(), 1u);
  EXPECT_EQ(counters.failed(), 1u);
  EXPECT_EQ(counters.queriesSent(), 2u) << "the second query is sent all the same";

  // Resumed: the server answers the queued queries, which ends the state; a new name is looked
  // up as usual.
  ::kill(server.pid(), SIGCONT);
  const auto recipient = sha1Hex("victim@example.org") + "." + kRecipientZone;
  context.restart();
  for (int i = 0; i < 40 && !resolver->cached(recipient); ++i) context.run_for(milliseconds(25));
  ASSERT_TRUE(resolver->cached(recipient)) << "the query sent while unresponsive was answered";
  const auto again = SteadyClock::now();
  const auto listed = lookUp(context, *resolver, ipQuery("192.0.2.9"));
  EXPECT_EQ(listed.status, DnsStatus::kFound) << listed.error;
  EXPECT_LT(SteadyClock::now() - again, milliseconds(200));
}

TEST(DnsResolver, ASilentServerMakesOnlyTheFirstLookupWaitUntilItAnswers) {
  testing::SilentUdpPort black_hole;
  asio::io_context context;
  DnsOptions options;
  options.servers = {black_hole.server()};
  options.timeout = milliseconds(150);
  options.tries = 2;
  auto resolver = makeResolver(context, options);

  auto start = SteadyClock::now();
  EXPECT_EQ(lookUp(context, *resolver, "2.0.0.127.a.test").status, DnsStatus::kTimeout);
  EXPECT_GE(SteadyClock::now() - start, milliseconds(280));
  for (const char* name : {"3.0.0.127.a.test", "4.0.0.127.a.test", "2.0.0.127.a.test"}) {
    start = SteadyClock::now();
    const auto answer = lookUp(context, *resolver, name);
    EXPECT_EQ(answer.status, DnsStatus::kTimeout) << name;
    EXPECT_LT(SteadyClock::now() - start, milliseconds(50)) << name;
  }
}

TEST(DnsResolver, CachesAnAnswerThatArrivesAfterTheDeadline) {
  Rbldnsd server({{"late.test", "ip4set", "late.ip4set", ":127.0.0.4:\n127.0.0.2\n"}});
  asio::io_context context;
  DnsOptions options;
  options.servers = {server.server()};
  options.timeout = milliseconds(200);
  options.tries = 3;  // the deadline is 600 ms; c-ares itself waits 200 + 400 + 800 ms
  auto resolver = makeResolver(context, options);
  const std::string name = "2.0.0.127.late.test";

  ::kill(server.pid(), SIGSTOP);  // the queries queue up in its socket
  const auto answer = lookUp(context, *resolver, name);
  ::kill(server.pid(), SIGCONT);
  EXPECT_EQ(answer.status, DnsStatus::kTimeout);
  // c-ares still listens and takes the late reply.
  context.restart();
  for (int i = 0; i < 40 && !resolver->cached(name); ++i) context.run_for(milliseconds(50));

  const auto late = resolver->cached(name);
  ASSERT_TRUE(late) << "the late answer is kept for the next lookup";
  EXPECT_EQ(late->status, DnsStatus::kFound);
  EXPECT_EQ(late->addresses, std::vector<std::uint32_t>{0x7f000004});
}

TEST(DnsResolver, ReportsServfailAsAFailureAndDoesNotCacheIt) {
  testing::FixedRcodeDnsServer servfail(2);
  asio::io_context context;
  DnsOptions options;
  options.servers = {servfail.server()};
  options.timeout = milliseconds(500);
  auto resolver = makeResolver(context, options);
  const CounterDeltas counters;

  const auto first = lookUp(context, *resolver, "2.0.0.127.testkey.authbl.test");
  EXPECT_EQ(first.status, DnsStatus::kFailed);
  EXPECT_NE(first.error.find("general failure"), std::string::npos) << first.error;
  const auto second = lookUp(context, *resolver, "2.0.0.127.testkey.authbl.test");
  EXPECT_EQ(second.status, DnsStatus::kFailed);
  EXPECT_FALSE(second.from_cache);
  EXPECT_EQ(counters.queriesSent(), 2u);
  EXPECT_EQ(counters.failed(), 2u);
  EXPECT_GE(servfail.queriesAnswered(), 2);
}

TEST(DnsResolver, ReportsRefusedAsAFailure) {
  testing::FixedRcodeDnsServer refused(5);
  asio::io_context context;
  DnsOptions options;
  options.servers = {refused.server()};
  auto resolver = makeResolver(context, options);
  const auto answer = lookUp(context, *resolver, "2.0.0.127.testkey.authbl.test");
  EXPECT_EQ(answer.status, DnsStatus::kFailed);
  EXPECT_NE(answer.error.find("refused"), std::string::npos) << answer.error;
}

TEST(DnsResolver, ReportsAServerNobodyListensOnAsAFailureWithoutWaiting) {
  std::string closed_port;
  {
    testing::SilentUdpPort once_bound;  // bound and closed again: ICMP port unreachable now
    closed_port = once_bound.server();
  }
  asio::io_context context;
  DnsOptions options;
  options.servers = {closed_port};
  options.timeout = seconds(2);
  auto resolver = makeResolver(context, options);
  const auto start = SteadyClock::now();
  const auto answer = lookUp(context, *resolver, "2.0.0.127.testkey.authbl.test");
  EXPECT_EQ(answer.status, DnsStatus::kFailed);
  EXPECT_FALSE(answer.error.empty());
  EXPECT_LT(SteadyClock::now() - start, seconds(1)) << "refused, not timed out";
}

TEST(DnsResolver, RejectsABadServerEntryByName) {
  asio::io_context context;
  for (const char* bad :
       {"dns.example:53", "127.0.0.1:99999", "127.0.0.1:", "[::1", "[::1]x", "1.2.3", ""}) {
    DnsOptions options;
    options.servers = {"127.0.0.1:15353", bad};
    const auto resolver = DnsResolver::create(context, options, makeDnsCache(options));
    ASSERT_FALSE(resolver) << "'" << bad << "'";
    EXPECT_NE(resolver.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << resolver.error().message;
  }
}

TEST(DnsResolver, AcceptsEveryServerForm) {
  asio::io_context context;
  DnsOptions options;
  options.servers = {"127.0.0.1", "127.0.0.1:15353", "::1", "[::1]", "[::1]:53"};
  EXPECT_TRUE(DnsResolver::create(context, options, makeDnsCache(options)));
  options.servers.clear();  // the system resolver (/etc/resolv.conf)
  EXPECT_TRUE(DnsResolver::create(context, options, nullptr));
}

TEST(DnsResolver, ShutdownCompletesLookupsInFlight) {
  testing::SilentUdpPort black_hole;
  asio::io_context context;
  DnsOptions options;
  options.servers = {black_hole.server()};
  options.timeout = seconds(5);
  options.tries = 3;
  auto resolver = makeResolver(context, options);

  asio::steady_timer shutdown_soon(context, milliseconds(100));
  shutdown_soon.async_wait([&](const boost::system::error_code&) { resolver->shutdown(); });
  const auto start = SteadyClock::now();
  const auto answers = lookUpTogether(context, *resolver, {"a.test", "b.test", "a.test"});
  EXPECT_LT(SteadyClock::now() - start, seconds(2));
  for (const auto& answer : answers) {
    EXPECT_EQ(answer.status, DnsStatus::kFailed);
    EXPECT_EQ(answer.error, "shutting down");
  }
  // Later lookups fail at once instead of hanging.
  EXPECT_EQ(lookUp(context, *resolver, "c.test").error, "shutting down");
  resolver->shutdown();  // twice is harmless
  // Nothing is left for the loop: it returns by itself.
  context.restart();
  EXPECT_EQ(context.run_for(seconds(5)), 0u);
}

TEST(DnsResolver, DestroyingTheResolverCompletesLookupsInFlight) {
  testing::SilentUdpPort black_hole;
  asio::io_context context;
  DnsOptions options;
  options.servers = {black_hole.server()};
  options.timeout = seconds(5);
  auto resolver = makeResolver(context, options);

  std::optional<DnsAnswer> answer;
  asio::co_spawn(context, resolver->resolve("a.test"),
                 [&](std::exception_ptr, DnsAnswer result) { answer = std::move(result); });
  context.run_for(milliseconds(100));
  ASSERT_FALSE(answer);
  resolver.reset();
  context.restart();
  context.run_for(seconds(5));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->error, "shutting down");
}

}  // namespace
}  // namespace saslguard::enrich
