// ldap_test.cpp — the LDAP identity mapper against a real slapd on loopback: logins and aliases
// to accounts, not found, caching (positive, negative, expiry, bound), filter injection, StartTLS
// and ldaps with a self-signed CA, bind failures, URI failover, a server that dies, hangs or
// comes back (also after kill -9, with a backoff between attempts to connect), unknown identities
// under load, queue waits within the timeout, a full queue, stop() with jobs queued; and the
// RFC 4515 escaping table.
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <sstream>
#include <thread>

#include "enrich/ldap.hpp"
#include "enrich/ldap_cache.hpp"
#include "enrich/ldap_connection.hpp"
#include "metrics/metrics.hpp"
#include "support/slapd.hpp"

namespace saslguard::enrich {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Slapd;
using testing::SlapdOptions;
using SteadyClock = std::chrono::steady_clock;

std::uint64_t counter(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

// Counters are process-wide; each test looks at how much they moved.
struct CounterDeltas {
  std::uint64_t lookups = counter("ldap_lookups_total");
  std::uint64_t hits = counter("ldap_cache_hits_total");
  std::uint64_t failures = counter("ldap_failures_total");
  std::uint64_t dropped = counter("ldap_dropped_total");
  std::uint64_t lookupsSent() const { return counter("ldap_lookups_total") - lookups; }
  std::uint64_t cacheHits() const { return counter("ldap_cache_hits_total") - hits; }
  std::uint64_t failed() const { return counter("ldap_failures_total") - failures; }
  std::uint64_t droppedJobs() const { return counter("ldap_dropped_total") - dropped; }
};

std::shared_ptr<LdapMapper> makeMapper(LdapOptions options) {
  auto mapper = LdapMapper::create(std::move(options));
  if (!mapper) throw std::runtime_error(mapper.error().message);
  return *mapper;
}

// Runs one map() on a local io_context until it completes or `bound` passes.
LdapAnswer mapOnce(LdapMapper& mapper, std::string identity, milliseconds bound = seconds(30)) {
  asio::io_context context;
  std::optional<LdapAnswer> answer;
  asio::co_spawn(context, mapper.map(std::move(identity)),
                 [&](std::exception_ptr error, LdapAnswer result) {
                   if (error) std::rethrow_exception(error);
                   answer = std::move(result);
                 });
  context.run_for(bound);
  if (!answer) {
    ADD_FAILURE() << "map() still pending after " << bound.count() << " ms";
    mapper.stop();  // completes the job, so nothing is posted to a destroyed context
    context.run_for(seconds(30));
    return {};
  }
  return *answer;
}

// A local io_context on its own thread, for tests that start map()s and look at them while
// they are pending. Declare it before the mapper, so the mapper stops first.
class EventLoop {
 public:
  EventLoop() : thread_([this] { context_.run(); }) {}
  ~EventLoop() {
    work_.reset();
    thread_.join();
  }
  std::future<LdapAnswer> map(LdapMapper& mapper, std::string identity) {
    return asio::co_spawn(context_, mapper.map(std::move(identity)), asio::use_future);
  }
  std::thread::id threadId() const { return thread_.get_id(); }
  asio::io_context& context() { return context_; }

 private:
  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{context_.get_executor()};
  std::thread thread_;
};

LdapAnswer await(std::future<LdapAnswer>& pending, milliseconds bound = seconds(30)) {
  if (pending.wait_for(bound) != std::future_status::ready) {
    ADD_FAILURE() << "map() still pending after " << bound.count() << " ms";
    return {};
  }
  return pending.get();
}

bool waitFor(const std::function<bool()>& condition, milliseconds bound = seconds(10)) {
  const auto deadline = SteadyClock::now() + bound;
  while (SteadyClock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return condition();
}

milliseconds since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
}

LdapOptions optionsFor(const std::string& uri) {
  LdapOptions options;
  options.uris = {uri};
  options.base_dn = Slapd::kSuffix;
  options.timeout = milliseconds(2000);
  options.pool_size = 2;
  return options;
}

// Captures everything logged while it lives (the process logger is replaced, then restored).
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(text_));
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return text_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream text_;
};

// One slapd for the tests that only read; each test has its own mapper (and so its own cache).
class LdapMapping : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      server_ = new Slapd();
    } catch (const std::exception& error) {
      setup_error_ = error.what();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (server_ == nullptr) GTEST_SKIP() << "slapd did not start: " << setup_error_;
  }
  static LdapOptions options() { return optionsFor(server_->uri()); }

  static inline Slapd* server_ = nullptr;
  static inline std::string setup_error_;
};

TEST(FilterEscape, EscapesRfc4515SpecialsAndNonAsciiBytes) {
  const std::array<std::pair<std::string, std::string>, 10> table{{
      {"alice", "alice"},
      {"alice@example.test", "alice@example.test"},
      {"*", "\\2a"},
      {"(", "\\28"},
      {")", "\\29"},
      {"\\", "\\5c"},
      {std::string("a\0b", 3), "a\\00b"},
      {"j\xc3\xbcrgen", "j\\c3\\bcrgen"},
      {"*)(uid=*", "\\2a\\29\\28uid=\\2a"},
      {"", ""},
  }};
  for (const auto& [raw, escaped] : table) EXPECT_EQ(escapeFilterValue(raw), escaped) << raw;
}

TEST(FilterEscape, ReplacesEveryPlaceholderWithTheEscapedValue) {
  EXPECT_EQ(ldapFilterFor("(|(uid=%s)(mail=%s))", "a*b"), "(|(uid=a\\2ab)(mail=a\\2ab))");
  EXPECT_EQ(ldapFilterFor("(uid=%s)", "%s"), "(uid=%s)");  // a value is not expanded again
  EXPECT_EQ(ldapFilterFor("(cn=100%)(uid=%s)", "x"), "(cn=100%)(uid=x)");
}

TEST(LdapOptionsCheck, NamesTheBadField) {
  auto errorFor = [](auto change) {
    LdapOptions options = optionsFor("ldap://127.0.0.1:389");
    change(options);
    auto mapper = LdapMapper::create(options);
    return mapper ? std::string("accepted") : mapper.error().message;
  };
  EXPECT_NE(errorFor([](LdapOptions& o) { o.uris.clear(); }).find("uris"), std::string::npos);
  EXPECT_NE(errorFor([](LdapOptions& o) { o.uris = {"http://x"}; }).find("uris"),
            std::string::npos);
  EXPECT_NE(errorFor([](LdapOptions& o) { o.scope = "subtree"; }).find("scope"), std::string::npos);
  EXPECT_NE(errorFor([](LdapOptions& o) { o.filter = "(uid=alice)"; }).find("filter"),
            std::string::npos);
  EXPECT_NE(errorFor([](LdapOptions& o) { o.bind_method = "gssapi"; }).find("bind_method"),
            std::string::npos);
  EXPECT_NE(errorFor([](LdapOptions& o) { o.ca_file = "/nonexistent/ca.pem"; }).find("ca_file"),
            std::string::npos);
  EXPECT_NE(errorFor([](LdapOptions& o) {
              o.cert_file = "/nonexistent/c.pem";
              o.key_file = "/etc/hostname";
            }).find("cert_file"),
            std::string::npos);
  EXPECT_NE(errorFor([](LdapOptions& o) { o.pool_size = 0; }).find("pool_size"), std::string::npos);
  EXPECT_EQ(errorFor([](LdapOptions& o) {
              o.uris = {"ldaps://a", "ldapi://%2Frun%2Fslapd%2Fldapi"};
              o.scope = "one";
            }),
            "accepted");
}

TEST(LdapOptionsCheck, CreateDoesNotConnect) {
  const auto dead = "ldap://127.0.0.1:" + std::to_string(testing::freeTcpPort());
  const CounterDeltas counters;
  auto mapper = LdapMapper::create(optionsFor(dead));
  ASSERT_TRUE(mapper) << mapper.error().message;
  (*mapper)->stop();
  EXPECT_EQ(counters.failed(), 0u);
  EXPECT_EQ(counters.lookupsSent(), 0u);
}

TEST(LdapCacheTest, KeepsAnswersForTheirTtlAndFailuresNever) {
  LdapCache cache(10, seconds(300), seconds(60));
  const SteadyClock::time_point start{};
  cache.store("alice", LdapAnswer{LdapStatus::kMapped, "alice", false, ""}, start);
  cache.store("ghost", LdapAnswer{LdapStatus::kNotFound, "", false, ""}, start);
  cache.store("down", LdapAnswer{LdapStatus::kFailed, "", false, "server down"}, start);
  ASSERT_TRUE(cache.find("alice", start + seconds(299)));
  EXPECT_TRUE(cache.find("alice", start + seconds(299))->from_cache);
  EXPECT_TRUE(cache.find("ghost", start + seconds(59)));
  EXPECT_FALSE(cache.find("down", start));
  EXPECT_FALSE(cache.find("ghost", start + seconds(60)));
  EXPECT_FALSE(cache.find("alice", start + seconds(300)));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(LdapCacheTest, EvictsTheOldestInsertionWhenFull) {
  LdapCache cache(2, seconds(300), seconds(60));
  const SteadyClock::time_point now{};
  for (const char* account : {"a", "b", "c"}) {
    cache.store(account, LdapAnswer{LdapStatus::kMapped, account, false, ""}, now);
  }
  EXPECT_FALSE(cache.find("a", now));
  EXPECT_TRUE(cache.find("b", now));
  EXPECT_TRUE(cache.find("c", now));
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(LdapMapping, MapsALoginToItsAccount) {
  auto mapper = makeMapper(options());
  const auto answer = mapOnce(*mapper, "alice");
  EXPECT_EQ(answer.status, LdapStatus::kMapped) << answer.error;
  EXPECT_EQ(answer.account, "alice");
  EXPECT_FALSE(answer.from_cache);
  EXPECT_EQ(mapOnce(*mapper, "bob@example.test").account, "bob");
}

TEST_F(LdapMapping, MapsAnAliasToItsAccount) {
  auto mapper = makeMapper(options());
  EXPECT_EQ(mapOnce(*mapper, "sales@example.test").account, "alice");
  EXPECT_EQ(mapOnce(*mapper, "alice.alias@example.test").account, "alice");
}

TEST_F(LdapMapping, LowerCasesTheAccountAsciiOnly) {
  auto mapper = makeMapper(options());
  EXPECT_EQ(mapOnce(*mapper, "carol@example.test").account, "carol");
  // A UTF-8 identity goes through the \XX escapes and still matches.
  EXPECT_EQ(mapOnce(*mapper, "j\xc3\xbcrgen").account, "j\xc3\xbcrgen");
}

TEST_F(LdapMapping, SpecialCharactersInAnIdentityMatchLiterally) {
  auto mapper = makeMapper(options());
  const auto answer = mapOnce(*mapper, "we*ird(uid)\\name");
  EXPECT_EQ(answer.status, LdapStatus::kMapped) << answer.error;
  EXPECT_EQ(answer.account, "we*ird(uid)\\name");
  EXPECT_EQ(mapOnce(*mapper, "we*").status, LdapStatus::kNotFound);
}

TEST_F(LdapMapping, UnknownIdentityIsNotFound) {
  auto mapper = makeMapper(options());
  const auto answer = mapOnce(*mapper, "nobody@example.test");
  EXPECT_EQ(answer.status, LdapStatus::kNotFound) << answer.error;
  EXPECT_TRUE(answer.account.empty());
}

TEST_F(LdapMapping, AnAttributeTheEntryLacksIsNotFound) {
  auto options = LdapMapping::options();
  options.result_attribute = "mailRoutingAddress";  // alice has one, bob has none
  auto mapper = makeMapper(options);
  EXPECT_EQ(mapOnce(*mapper, "alice").account, "alice@example.test");
  EXPECT_EQ(mapOnce(*mapper, "bob").status, LdapStatus::kNotFound);
}

TEST_F(LdapMapping, AMissingBaseIsNotFound) {
  auto options = LdapMapping::options();
  options.base_dn = "ou=nowhere,dc=example,dc=test";
  auto mapper = makeMapper(options);
  const auto answer = mapOnce(*mapper, "alice");
  EXPECT_EQ(answer.status, LdapStatus::kNotFound) << answer.error;
}

TEST_F(LdapMapping, ScopeOneLooksOnlyOneLevelDown) {
  auto options = LdapMapping::options();
  options.scope = "one";
  auto mapper = makeMapper(options);
  EXPECT_EQ(mapOnce(*mapper, "alice").status, LdapStatus::kNotFound);  // two levels down
  options.base_dn = "ou=people,dc=example,dc=test";
  auto one_level = makeMapper(options);
  EXPECT_EQ(mapOnce(*one_level, "alice").account, "alice");
}

TEST_F(LdapMapping, SeveralMatchingEntriesUseTheFirst) {
  auto mapper = makeMapper(options());
  const auto answer = mapOnce(*mapper, "team@example.test");  // bob's and Carol's alias
  EXPECT_EQ(answer.status, LdapStatus::kMapped) << answer.error;
  EXPECT_TRUE(answer.account == "bob" || answer.account == "carol") << answer.account;
}

TEST_F(LdapMapping, FilterInjectionMatchesNothing) {
  const std::string attack = "*)(uid=*";
  // Put into the filter unescaped (as geoip-policyd does), it matches every entry.
  std::string unescaped = LdapOptions{}.filter;
  for (auto at = unescaped.find("%s"); at != std::string::npos; at = unescaped.find("%s")) {
    unescaped.replace(at, 2, attack);
  }
  const auto command = "ldapsearch -x -LLL -H " + server_->uri() + " -b " + Slapd::kSuffix + " '" +
                       unescaped + "' dn 2>/dev/null | grep -c '^dn:'";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  int matched = 0;
  EXPECT_EQ(std::fscanf(pipe, "%d", &matched), 1);
  ::pclose(pipe);
  EXPECT_GE(matched, 5) << unescaped;

  auto mapper = makeMapper(options());
  const auto answer = mapOnce(*mapper, attack);
  EXPECT_EQ(answer.status, LdapStatus::kNotFound) << answer.error;
  EXPECT_TRUE(answer.account.empty());
  EXPECT_EQ(mapOnce(*mapper, "*").status, LdapStatus::kNotFound);
}

TEST_F(LdapMapping, SecondCallIsACacheHit) {
  auto mapper = makeMapper(options());
  const CounterDeltas counters;
  EXPECT_FALSE(mapper->cached("alice"));
  EXPECT_FALSE(mapOnce(*mapper, "alice").from_cache);
  EXPECT_EQ(counters.lookupsSent(), 1u);
  const auto again = mapOnce(*mapper, "alice");
  EXPECT_EQ(again.status, LdapStatus::kMapped);
  EXPECT_EQ(again.account, "alice");
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(counters.lookupsSent(), 1u);
  EXPECT_EQ(counters.cacheHits(), 1u);
  ASSERT_TRUE(mapper->cached("alice"));
  EXPECT_EQ(mapper->cached("alice")->account, "alice");
}

TEST_F(LdapMapping, NotFoundIsCachedToo) {
  auto mapper = makeMapper(options());
  const CounterDeltas counters;
  EXPECT_EQ(mapOnce(*mapper, "ghost@example.test").status, LdapStatus::kNotFound);
  const auto again = mapOnce(*mapper, "ghost@example.test");
  EXPECT_EQ(again.status, LdapStatus::kNotFound);
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(counters.lookupsSent(), 1u);
}

TEST_F(LdapMapping, CachedAnswersExpireAfterTheirTtl) {
  auto now = SteadyClock::time_point{} + std::chrono::hours(1);
  auto options = LdapMapping::options();
  options.cache_ttl = seconds(300);
  options.negative_cache_ttl = seconds(60);
  options.clock = [&now] { return now; };
  auto mapper = makeMapper(options);
  const CounterDeltas counters;
  mapOnce(*mapper, "alice");
  mapOnce(*mapper, "ghost");
  now += seconds(61);  // the negative answer has expired, the positive one not
  EXPECT_TRUE(mapOnce(*mapper, "alice").from_cache);
  EXPECT_FALSE(mapOnce(*mapper, "ghost").from_cache);
  EXPECT_EQ(counters.lookupsSent(), 3u);
  now += seconds(300);
  EXPECT_FALSE(mapOnce(*mapper, "alice").from_cache);
  EXPECT_EQ(counters.lookupsSent(), 4u);
}

TEST_F(LdapMapping, CompletesOnTheAwaitingCoroutinesThread) {
  auto mapper = makeMapper(options());
  asio::io_context context;
  std::thread::id resumed_on;
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        co_await mapper->map("bob");
        resumed_on = std::this_thread::get_id();
      },
      [](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
      });
  context.run_for(seconds(30));
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
}

TEST_F(LdapMapping, ManyConcurrentMapsAllComplete) {
  auto options = LdapMapping::options();
  options.pool_size = 4;
  auto mapper = makeMapper(options);
  asio::io_context context;
  const std::vector<std::string> identities{"alice", "bob", "carol@example.test",
                                            "sales@example.test", "nobody"};
  std::vector<LdapAnswer> answers;
  for (int round = 0; round < 10; ++round) {
    for (const auto& identity : identities) {
      asio::co_spawn(context, mapper->map(identity),
                     [&](std::exception_ptr error, LdapAnswer answer) {
                       if (error) std::rethrow_exception(error);
                       answers.push_back(std::move(answer));
                     });
    }
  }
  context.run_for(seconds(30));
  ASSERT_EQ(answers.size(), 50u);
  for (const auto& answer : answers) EXPECT_NE(answer.status, LdapStatus::kFailed) << answer.error;
}

TEST_F(LdapMapping, SimpleBindWithTheRightPasswordMaps) {
  auto options = LdapMapping::options();
  options.bind_dn = Slapd::kRootDn;
  options.bind_password = Slapd::kRootPassword;
  auto mapper = makeMapper(options);
  const auto answer = mapOnce(*mapper, "alice");
  EXPECT_EQ(answer.account, "alice") << answer.error;
}

TEST_F(LdapMapping, WrongPasswordFailsWithoutShowingIt) {
  const std::string password = "Wr0ng-Passw0rd-7d1f";
  auto options = LdapMapping::options();
  options.bind_dn = Slapd::kRootDn;
  options.bind_password = password;
  const LogCapture log;
  const CounterDeltas counters;
  auto mapper = makeMapper(options);
  const auto answer = mapOnce(*mapper, "alice");
  mapper->stop();
  EXPECT_EQ(answer.status, LdapStatus::kFailed);
  EXPECT_NE(answer.error.find("Invalid credentials"), std::string::npos) << answer.error;
  EXPECT_EQ(answer.error.find(password), std::string::npos) << answer.error;
  EXPECT_EQ(log.text().find(password), std::string::npos) << log.text();
  EXPECT_EQ(counters.failed(), 1u);
  EXPECT_FALSE(mapper->cached("alice"));  // failures are never cached
}

TEST_F(LdapMapping, FailsOverFromADeadUriToTheNext) {
  auto options = LdapMapping::options();
  options.uris = {"ldap://127.0.0.1:" + std::to_string(testing::freeTcpPort()), server_->uri()};
  auto mapper = makeMapper(options);
  const auto start = SteadyClock::now();
  const auto answer = mapOnce(*mapper, "alice");
  EXPECT_EQ(answer.account, "alice") << answer.error;
  EXPECT_LT(since(start), seconds(2));  // a refused port is skipped at once, not by timeout
}

TEST_F(LdapMapping, AllUrisDeadFailsFast) {
  auto options = LdapMapping::options();
  options.uris = {"ldap://127.0.0.1:" + std::to_string(testing::freeTcpPort())};
  auto mapper = makeMapper(options);
  const CounterDeltas counters;
  const auto start = SteadyClock::now();
  const auto answer = mapOnce(*mapper, "alice");
  EXPECT_EQ(answer.status, LdapStatus::kFailed);
  EXPECT_NE(answer.error.find("127.0.0.1"), std::string::npos) << answer.error;
  EXPECT_LT(since(start), seconds(2));
  EXPECT_EQ(counters.failed(), 1u);
  EXPECT_EQ(mapOnce(*mapper, "alice").status, LdapStatus::kFailed);  // not cached
  EXPECT_EQ(counters.failed(), 2u);
}

TEST_F(LdapMapping, MeasuresSearchAndCacheHitCost) {
  auto options = LdapMapping::options();
  options.pool_size = 1;
  auto mapper = makeMapper(options);
  asio::io_context context;
  constexpr int kSearches = 200;
  int completed = 0;
  const auto start = SteadyClock::now();
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < kSearches; ++i) {
          const auto answer = co_await mapper->map("user" + std::to_string(i) + "@example.test");
          if (answer.status == LdapStatus::kNotFound) ++completed;
        }
      },
      [](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
      });
  context.run_for(seconds(60));
  const auto search_us =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count() /
      kSearches;
  EXPECT_EQ(completed, kSearches);

  constexpr int kHits = 100000;
  const auto hits_start = SteadyClock::now();
  int hits = 0;
  for (int i = 0; i < kHits; ++i) hits += mapper->cached("user7@example.test").has_value();
  const auto hit_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - hits_start)
          .count() /
      kHits;
  EXPECT_EQ(hits, kHits);
  std::cout << "[ measure  ] sequential map() against slapd: " << search_us
            << " us each; cached(): " << hit_ns << " ns each\n";
  EXPECT_LT(search_us, 50000);
}

TEST(SlapdHelper, StopsAndRestartsOnTheSamePort) {
  Slapd server;
  const auto port = server.port();
  const auto first_pid = server.pid();
  auto mapper = makeMapper(optionsFor(server.uri()));
  EXPECT_EQ(mapOnce(*mapper, "alice").account, "alice");
  server.stop();
  EXPECT_FALSE(server.running());
  server.start();
  EXPECT_EQ(server.port(), port);
  EXPECT_NE(server.pid(), first_pid);
  EXPECT_EQ(mapOnce(*mapper, "bob").account, "bob");
}

TEST(LdapTls, StartTlsWithTheCaSucceedsAndWithoutItFails) {
  Slapd server(SlapdOptions{.ldif = "", .tls = true, .ldapi = false});
  auto options = optionsFor(server.uri());
  options.starttls = true;
  options.ca_file = server.caFile();
  const auto with_ca = mapOnce(*makeMapper(options), "alice");
  EXPECT_EQ(with_ca.account, "alice") << with_ca.error;

  options.ca_file.clear();  // only the system's CAs (ldap.conf): the test CA is not among them
  const auto without_ca = mapOnce(*makeMapper(options), "alice");
  EXPECT_EQ(without_ca.status, LdapStatus::kFailed);
  EXPECT_FALSE(without_ca.error.empty());

  options.tls_skip_verify = true;
  const auto skipped = mapOnce(*makeMapper(options), "alice");
  EXPECT_EQ(skipped.account, "alice") << skipped.error;
}

TEST(LdapTls, LdapsWithTheCaSucceedsAndWithoutItFails) {
  Slapd server(SlapdOptions{.ldif = "", .tls = true, .ldapi = false});
  auto options = optionsFor(server.ldapsUri());
  options.ca_file = server.caFile();
  const auto with_ca = mapOnce(*makeMapper(options), "sales@example.test");
  EXPECT_EQ(with_ca.account, "alice") << with_ca.error;

  options.ca_file.clear();
  const auto without_ca = mapOnce(*makeMapper(options), "alice");
  EXPECT_EQ(without_ca.status, LdapStatus::kFailed);
}

TEST(LdapBind, SaslExternalOverLdapi) {
  Slapd server(SlapdOptions{.ldif = "", .tls = false, .ldapi = true});
  auto options = optionsFor(server.ldapiUri());
  options.bind_method = "external";
  const auto answer = mapOnce(*makeMapper(options), "alice");
  EXPECT_EQ(answer.account, "alice") << answer.error;
}

TEST(LdapServerOutage, StoppedServerFailsFastAndARestartedOneMapsAgain) {
  Slapd server;
  auto options = optionsFor(server.uri());
  options.pool_size = 1;
  auto mapper = makeMapper(options);
  ASSERT_EQ(mapOnce(*mapper, "alice").account, "alice");

  server.stop();
  auto start = SteadyClock::now();
  const auto down = mapOnce(*mapper, "bob");
  EXPECT_EQ(down.status, LdapStatus::kFailed);
  EXPECT_LT(since(start), options.timeout + seconds(1));

  server.start();
  start = SteadyClock::now();
  const auto back = mapOnce(*mapper, "bob");
  EXPECT_EQ(back.account, "bob") << back.error;
  EXPECT_LT(since(start), options.timeout);
}

TEST(LdapServerOutage, HungServerFailsWithinTheTimeout) {
  Slapd server;
  auto options = optionsFor(server.uri());
  options.pool_size = 1;
  options.timeout = milliseconds(1000);
  auto mapper = makeMapper(options);
  ASSERT_EQ(mapOnce(*mapper, "alice").account, "alice");  // connected before the hang

  server.pause();
  const auto start = SteadyClock::now();
  const auto hung = mapOnce(*mapper, "bob");
  const auto took = since(start);
  server.resume();
  EXPECT_EQ(hung.status, LdapStatus::kFailed);
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, milliseconds(2500)) << hung.error;

  const auto back = mapOnce(*mapper, "bob");  // a fresh connection after the timeout
  EXPECT_EQ(back.account, "bob") << back.error;
}

TEST(LdapServerOutage, AfterAHungServerTheNextSearchUsesTheNextUri) {
  Slapd hung;
  Slapd healthy;
  auto options = optionsFor(hung.uri());
  options.uris.push_back(healthy.uri());
  options.pool_size = 1;
  options.timeout = milliseconds(1000);
  auto mapper = makeMapper(options);
  ASSERT_EQ(mapOnce(*mapper, "alice").account, "alice");  // on the first URI

  hung.pause();
  EXPECT_EQ(mapOnce(*mapper, "bob").status, LdapStatus::kFailed);  // waited for the timeout
  const auto start = SteadyClock::now();
  const auto moved = mapOnce(*mapper, "bob");
  EXPECT_EQ(moved.account, "bob") << moved.error;
  EXPECT_LT(since(start), milliseconds(500));  // straight to the second URI
  hung.resume();
}

// kill -9, as the fault tests do: the workers' connections break without an LDAP goodbye.
// While slapd is gone lookups fail at once (between attempts to connect, the backoff); once it
// is back on the same port the same mapper maps again by itself, within the longest backoff.
TEST(LdapServerOutage, KilledServerFailsFastAndTheMapperReconnectsByItself) {
  Slapd server;
  auto options = optionsFor(server.uri());
  options.pool_size = 2;
  options.timeout = milliseconds(500);
  options.cache_entries = 0;  // every map() searches
  auto mapper = makeMapper(options);
  ASSERT_EQ(mapOnce(*mapper, "alice.alias@example.test").account, "alice");

  ::kill(server.pid(), SIGKILL);
  server.stop();  // reaps it
  const CounterDeltas counters;
  std::string backoff_error;
  for (int i = 0; i < 20; ++i) {
    const auto start = SteadyClock::now();
    const auto down = mapOnce(*mapper, "alice.alias@example.test");
    EXPECT_EQ(down.status, LdapStatus::kFailed);
    EXPECT_LT(since(start), options.timeout + milliseconds(100));
    if (down.error.find("next attempt in") != std::string::npos) backoff_error = down.error;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(counters.failed(), 20u);
  EXPECT_NE(backoff_error.find("connect"), std::string::npos)
      << "lookups in the backoff say why: " << backoff_error;

  server.start();
  const auto restarted = SteadyClock::now();
  LdapAnswer back;
  while (since(restarted) < seconds(5)) {
    back = mapOnce(*mapper, "alice.alias@example.test");
    if (back.status == LdapStatus::kMapped) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  const auto recovery = since(restarted);
  std::cout << "[ measure  ] mapping again " << recovery.count() << " ms after the restart\n";
  EXPECT_EQ(back.account, "alice") << back.error;
  EXPECT_LT(recovery, LdapConnection::kMaxBackoff + milliseconds(500));
  // Both workers reconnected: a burst of maps all succeed.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(mapOnce(*mapper, "alice").account, "alice");
}

// Not in the directory is an answer, not a failure, also with the pool busy and no cache.
TEST(LdapServerOutage, UnknownIdentitiesUnderConcurrentLoadAreNotFound) {
  Slapd server;
  auto options = optionsFor(server.uri());
  options.pool_size = 4;
  options.timeout = milliseconds(500);
  options.cache_entries = 0;
  auto mapper = makeMapper(options);
  asio::io_context context;
  const CounterDeltas counters;
  std::vector<LdapAnswer> answers;
  for (int i = 0; i < 400; ++i) {
    asio::co_spawn(context, mapper->map("user" + std::to_string(i) + "@example.org"),
                   [&](std::exception_ptr error, LdapAnswer answer) {
                     if (error) std::rethrow_exception(error);
                     answers.push_back(std::move(answer));
                   });
  }
  context.run_for(seconds(60));
  ASSERT_EQ(answers.size(), 400u);
  std::size_t not_found = 0;
  for (const auto& answer : answers) {
    if (answer.status == LdapStatus::kNotFound) ++not_found;
  }
  EXPECT_EQ(not_found, 400u) << answers.front().error;
  EXPECT_EQ(counters.failed(), 0u);
}

// map() promises an answer within the timeout, time in the queue included: with one worker and
// a hung server, three maps used to complete after 1, 2 and 3 timeouts.
TEST(LdapServerOutage, QueuedMapsBehindAHungServerFailWithinTheTimeout) {
  Slapd server;
  auto options = optionsFor(server.uri());
  options.pool_size = 1;
  options.timeout = milliseconds(500);
  options.cache_entries = 0;
  EventLoop loop;
  auto mapper = makeMapper(options);
  ASSERT_EQ(mapOnce(*mapper, "alice").account, "alice");

  server.pause();
  const auto start = SteadyClock::now();
  std::vector<std::future<LdapAnswer>> pending;
  for (const char* identity : {"bob", "carol@example.test", "sales@example.test"}) {
    pending.push_back(loop.map(*mapper, identity));
  }
  std::vector<milliseconds> took;
  for (auto& future : pending) {
    const auto answer = await(future, seconds(5));
    took.push_back(since(start));
    EXPECT_EQ(answer.status, LdapStatus::kFailed);
  }
  server.resume();
  std::cout << "[ measure  ] three maps on one worker, server hung, timeout 500 ms: "
            << took[0].count() << ", " << took[1].count() << ", " << took[2].count() << " ms\n";
  for (const auto elapsed : took) EXPECT_LT(elapsed, options.timeout + milliseconds(250));
  const auto back = mapOnce(*mapper, "bob");
  EXPECT_EQ(back.account, "bob") << back.error;
}

TEST(LdapQueue, FullQueueFailsAtOnce) {
  Slapd server;
  auto options = optionsFor(server.uri());
  options.pool_size = 1;
  options.max_queued = 1;
  options.timeout = milliseconds(5000);
  EventLoop loop;
  auto mapper = makeMapper(options);
  ASSERT_EQ(mapOnce(*mapper, "alice").account, "alice");

  server.pause();
  const CounterDeltas counters;
  auto busy = loop.map(*mapper, "bob");  // the worker takes it and waits for the server
  ASSERT_TRUE(waitFor([&] { return counters.lookupsSent() == 1; }));
  auto queued = loop.map(*mapper, "carol@example.test");
  const auto start = SteadyClock::now();
  auto refused = loop.map(*mapper, "sales@example.test");
  const auto full = await(refused, seconds(5));
  EXPECT_LT(since(start), milliseconds(500));
  EXPECT_EQ(full.status, LdapStatus::kFailed);
  EXPECT_EQ(full.error, "queue full");
  EXPECT_EQ(counters.droppedJobs(), 1u);
  EXPECT_EQ(queued.wait_for(milliseconds(0)), std::future_status::timeout);

  server.resume();  // the server answers what it was sent, then the queued job
  EXPECT_EQ(await(busy).account, "bob");
  EXPECT_EQ(await(queued).account, "carol");
}

TEST(LdapQueue, StopCompletesQueuedJobs) {
  Slapd server;
  auto options = optionsFor(server.uri());
  options.pool_size = 1;
  options.timeout = milliseconds(3000);
  EventLoop loop;
  auto mapper = makeMapper(options);
  ASSERT_EQ(mapOnce(*mapper, "alice").account, "alice");

  server.pause();
  const CounterDeltas counters;
  auto busy = loop.map(*mapper, "bob");
  ASSERT_TRUE(waitFor([&] { return counters.lookupsSent() == 1; }));
  auto first_queued = loop.map(*mapper, "carol@example.test");
  auto second_queued = loop.map(*mapper, "sales@example.test");

  // stop() waits for the busy worker (up to the timeout); the queued jobs complete before. On a
  // loaded machine the worker may have finished "bob" (the stop signal reaches all of slapd's
  // threads a moment late) and taken "carol": that one then ends with the server's answer or
  // the timeout, never lost. The last queued job cannot have been taken.
  std::thread stopper([&] { mapper->stop(); });
  const bool second_ready = second_queued.wait_for(seconds(2)) == std::future_status::ready;
  const bool first_ready = first_queued.wait_for(seconds(0)) == std::future_status::ready;
  server.resume();
  stopper.join();
  const auto first = await(first_queued);
  const auto second = await(second_queued);
  EXPECT_TRUE(second_ready);
  EXPECT_EQ(second.status, LdapStatus::kFailed);
  EXPECT_EQ(second.error, "stopping");
  if (first_ready) {
    EXPECT_EQ(first.error, "stopping");
  } else {
    EXPECT_TRUE(first.account == "carol" || first.status == LdapStatus::kFailed) << first.error;
  }
  const auto busy_answer = await(busy);  // answered once resumed, or timed out: never lost
  EXPECT_TRUE(busy_answer.account == "bob" || busy_answer.status == LdapStatus::kFailed);

  auto after = loop.map(*mapper, "alice");  // alice is cached
  EXPECT_TRUE(await(after).from_cache);
  auto uncached = loop.map(*mapper, "nobody");
  EXPECT_EQ(await(uncached).error, "stopping");
  mapper->stop();  // idempotent
}

}  // namespace
}  // namespace saslguard::enrich
