// migrate_redis_test.cpp — black box: `saslguard migrate redis --from geoip-policyd` against real
// redis-servers: geopol_* records become the geo sets (dry run writes nothing, a second run
// changes nothing, malformed records are skipped and counted), and a daemon on that Redis counts
// the imported countries at once (a third country over max_countries = 2 is refused).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "support/daemon_process.hpp"
#include "support/mmdb.hpp"
#include "support/redis.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;

const std::string kGeoReject = "action=REJECT 5.7.1 Policy violation. Please contact your support";
const std::string kBlocked = "action=REJECT 5.7.1 This account is blocked; contact your support";

std::int64_t nowNs(std::chrono::seconds ago = 0s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             (std::chrono::system_clock::now() - ago).time_since_epoch())
      .count();
}

std::string writeConfig(const TempDir& dir, unsigned short redis_port,
                        const std::string& database) {
  const auto path = (dir / "saslguard.toml").string();
  std::ofstream(path) << "[state]\nbackend = \"redis\"\n[redis]\nserver = \"127.0.0.1:"
                      << redis_port << "\"\n[detectors.geo]\nenabled = true\ndatabase = \""
                      << database << "\"\nmax_countries = 2\n";
  return path;
}

// Every saslguard key with its members, scores and whether it expires: the state to compare.
std::string dump(const RedisServer& redis) {
  std::string out;
  const auto keys = redis.query({"KEYS", "{saslguard:*"}).value_or("?");
  out += keys + "\n";
  for (const char* key :
       {"{saslguard:alice@example.org}:s:geo:countries", "{saslguard:alice@example.org}:s:geo:ips",
        "{saslguard:alice@example.org}:s:geo:home_countries"}) {
    out += redis.query({"ZRANGE", key, "0", "-1", "WITHSCORES"}).value_or("?") + "\n";
  }
  out += redis.query({"HGETALL", "{saslguard:alice@example.org}:names"}).value_or("?") + "\n";
  out += redis.query({"SMEMBERS", "compromised_accts"}).value_or("?") + "\n";
  return out;
}

TEST(MigrateRedis, GeopolRecordsBecomeGeoSetsIdempotentlyAndTheDaemonCountsThem) {
  RedisServer redis;
  TempDir dir;
  const auto database = (dir / "GeoLite2-Country.mmdb").string();
  writeMmdb(database, defaultTestNetworks());
  const auto config = writeConfig(dir, redis.port(), database);

  const auto gb = std::to_string(nowNs(60s));
  const auto se = std::to_string(nowNs(120s));
  ASSERT_TRUE(redis.query({"SET", "geopol_Alice@Example.org",
                           R"({"ForeignIPs":{"81.2.69.142":)" + gb + R"(,"89.160.20.112":)" + se +
                               R"(},"ForeignCountries":{"GB":)" + gb + R"(,"SE":)" + se +
                               R"(},"HomeCountries":null,"Actions":null,"Locked":false})"}));
  ASSERT_TRUE(redis.query({"SET", "geopol_carol@example.org",
                           R"({"ForeignIPs":{},"ForeignCountries":{"CN":)" + gb +
                               R"(},"HomeCountries":null,"Actions":["operator"],"Locked":true})"}));
  ASSERT_TRUE(redis.query({"SET", "geopol_old@example.org",
                           R"({"ForeignCountries":{"GB":)" + std::to_string(nowNs(7200s)) + "}}"}));
  ASSERT_TRUE(redis.query({"SET", "geopol_broken@example.org", R"({"ForeignIPs":{"81.2.)"}));
  ASSERT_TRUE(redis.query({"HSET", "geopol_hash@example.org", "a", "b"}));
  ASSERT_TRUE(redis.query({"SET", "unrelated", "x"}));

  // A dry run prints the plan and writes nothing.
  const auto dry = runSaslguard(
      {"migrate", "redis", "--from", "geoip-policyd", "--config", config, "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("alice@example.org: countries GB SE; ips 81.2.69.142 89.160.20.112; "
                            "home countries -; home ips -"),
            std::string::npos)
      << dry.output;
  EXPECT_NE(dry.output.find("carol@example.org: countries CN; ips -; home countries -; home ips "
                            "-; locked: would be marked compromised"),
            std::string::npos)
      << dry.output;
  EXPECT_NE(dry.output.find("dry run: 5 geoip-policyd record(s), 2 would be imported (5 entries, "
                            "1 expired left out), 1 would be marked, 3 skipped (1 malformed "
                            "JSON, 1 not a string, 1 nothing live)"),
            std::string::npos)
      << dry.output;
  EXPECT_NE(dry.output.find("skipped geopol_broken@example.org: malformed JSON"), std::string::npos)
      << dry.output;
  EXPECT_EQ(redis.query({"KEYS", "{saslguard:*"}), "[]");

  const auto started = std::chrono::steady_clock::now();
  const auto first =
      runSaslguard({"migrate", "redis", "--from", "geoip-policyd", "--config", config});
  std::cout << "migration of 5 records: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count()
            << " ms (process start included)\n";
  EXPECT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("5 geoip-policyd record(s), 2 imported (5 entries, 5 new, 1 expired "
                              "left out), 1 marked, 3 skipped"),
            std::string::npos)
      << first.output;
  // The store's own layout: member -> last seen (unix s), a TTL, the names hash.
  EXPECT_EQ(redis.query({"ZSCORE", "{saslguard:alice@example.org}:s:geo:countries", "GB"}),
            std::to_string(std::stoll(gb) / 1'000'000'000));
  const auto ttl_text =
      redis.query({"TTL", "{saslguard:alice@example.org}:s:geo:countries"}).value_or("?");
  ASSERT_TRUE(ttl_text.starts_with("(integer) ")) << ttl_text;
  const auto ttl = std::stoll(ttl_text.substr(10));
  EXPECT_GT(ttl, 3400);
  EXPECT_LE(ttl, 3600);
  EXPECT_EQ(redis.query({"HGET", "{saslguard:alice@example.org}:names", "s:geo:countries"}),
            "3600");
  const auto state = dump(redis);

  // Twice: the same state, nothing new, carol's mark not hit again.
  const auto second =
      runSaslguard({"migrate", "redis", "--from", "geoip-policyd", "--config", config});
  EXPECT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("(5 entries, 0 new,"), std::string::npos) << second.output;
  EXPECT_EQ(dump(redis), state);
  EXPECT_EQ(redis.query({"HGET", "{saslguard:carol@example.org}:mark", "hits"}), "0");

  // A daemon on that Redis: alice has GB and SE already, so CN is her third country.
  DaemonProcess daemon(
      {"--config", config, "--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string()},
      dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto client = PolicyClient::connectTcp(daemon.port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(postfixRequest("alice@example.org", std::string(kGbAddress))),
            "action=DUNNO");
  EXPECT_EQ(client->ask(postfixRequest("alice@example.org", std::string(kCnAddress))), kGeoReject)
      << daemon.log();
  // Without the import the same two requests would pass: bob has no history.
  EXPECT_EQ(client->ask(postfixRequest("bob@example.org", std::string(kGbAddress))),
            "action=DUNNO");
  EXPECT_EQ(client->ask(postfixRequest("bob@example.org", std::string(kCnAddress))),
            "action=DUNNO");
  // geoip-policyd's lock is a mark here.
  EXPECT_EQ(client->ask(postfixRequest("carol@example.org", std::string(kGbAddress))), kBlocked);
}

TEST(MigrateRedis, ReadsAnotherRedisGivenBySourceAndCountsManyRecords) {
  RedisServer source;
  RedisServer target;
  TempDir dir;
  const auto database = (dir / "GeoLite2-Country.mmdb").string();
  writeMmdb(database, defaultTestNetworks());
  const auto config = writeConfig(dir, target.port(), database);
  constexpr int kRecords = 2000;
  std::vector<std::vector<std::string>> sets;
  const auto seen = std::to_string(nowNs(30s));
  sets.push_back({"SELECT", "3"});
  for (int i = 0; i < kRecords; ++i) {
    sets.push_back({"SET", "geopol_user" + std::to_string(i) + "@example.org",
                    R"({"ForeignIPs":{"81.2.69.)" + std::to_string(i % 250) + "\":" + seen +
                        R"(},"ForeignCountries":{"GB":)" + seen + "}}"});
  }
  ASSERT_TRUE(source.querySequence(sets));

  const auto started = std::chrono::steady_clock::now();
  const auto run =
      runSaslguard({"migrate", "redis", "--from", "geoip-policyd", "--config", config, "--source",
                    "redis://127.0.0.1:" + std::to_string(source.port()) + "/3"});
  const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
  std::cout << "migration of " << kRecords << " records: " << elapsed_ms << " ms\n";
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("2000 geoip-policyd record(s), 2000 imported (4000 entries, 4000 new"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(target.query({"ZSCORE", "{saslguard:user7@example.org}:s:geo:ips", "81.2.69.7"}),
            std::to_string(std::stoll(seen) / 1'000'000'000));
  EXPECT_EQ(source.query({"KEYS", "{saslguard:*"}), "[]");

  // A source that does not answer: a clear error, exit 1.
  const auto unreachable = runSaslguard({"migrate", "redis", "--from", "geoip-policyd", "--config",
                                         config, "--source", "redis://127.0.0.1:1/0"});
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.output;
  EXPECT_NE(unreachable.output.find("reading the source Redis"), std::string::npos)
      << unreachable.output;
  const auto bad = runSaslguard(
      {"migrate", "redis", "--from", "geoip-policyd", "--config", config, "--source", "nonsense"});
  EXPECT_EQ(bad.exit_code, 78) << bad.output;
}

}  // namespace
}  // namespace saslguard::testing
