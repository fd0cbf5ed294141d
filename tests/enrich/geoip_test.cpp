// geoip_test.cpp — GeoIpDatabase against MaxMind DB files written by perl's MaxMind::DB::Writer:
// countries over IPv4, IPv6 and IPv4-mapped IPv6, special addresses, open errors, reloads after
// an atomic replacement, a rewrite in place, garbage and deletion, and lookups racing reloads.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "enrich/geoip.hpp"
#include "metrics/metrics.hpp"
#include "support/mmdb.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::enrich {
namespace {

namespace fs = std::filesystem;
using testing::MmdbNetworks;
using testing::TempDir;

std::uint64_t counter(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

std::unique_ptr<GeoIpDatabase> openOrFail(const fs::path& path) {
  auto database = GeoIpDatabase::open(path);
  if (!database) {
    ADD_FAILURE() << database.error().message;
    return nullptr;
  }
  return std::move(*database);
}

// The default networks with one change: the GB network now answers SE.
MmdbNetworks networksWithGbMovedToSweden() {
  auto networks = testing::defaultTestNetworks();
  networks.push_back({std::string(testing::kGbNetwork), "SE"});  // later entries win
  return networks;
}

// "true", "false" or the error message: readable in a failed expectation.
std::string outcome(const Result<bool>& reload) {
  if (!reload) return "error: " + reload.error().message;
  return *reload ? "true" : "false";
}

ino_t inodeOf(const fs::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) ADD_FAILURE() << "cannot stat " << path;
  return status.st_ino;
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  ::gmtime_r(&now, &parts);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &parts);
  return text;
}

// Perl start-up makes a database cost ~0.3 s, so the databases most tests only read are written
// once per suite run.
class GeoIp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new TempDir;
    testing::writeMmdb(defaultPath(), testing::defaultTestNetworks());
  }
  static void TearDownTestSuite() {
    delete directory_;
    directory_ = nullptr;
  }
  static fs::path defaultPath() { return *directory_ / "default.mmdb"; }

  static TempDir* directory_;
};
TempDir* GeoIp::directory_ = nullptr;

TEST_F(GeoIp, AnswersCountriesForIpv4) {
  auto database = openOrFail(defaultPath());
  ASSERT_TRUE(database);
  EXPECT_EQ(database->country(testing::kGbAddress), "GB");
  EXPECT_EQ(database->country(testing::kGbAddress2), "GB");
  EXPECT_EQ(database->country(testing::kSeAddress), "SE");
  EXPECT_EQ(database->country(testing::kCnAddress), "CN");
  EXPECT_EQ(database->country(testing::kUsAddress), "US");
  EXPECT_EQ(database->country("81.2.69.0"), "GB");  // first and last address of the network
  EXPECT_EQ(database->country("81.2.69.255"), "GB");
  EXPECT_EQ(database->country("81.2.70.0"), std::nullopt);
}

TEST_F(GeoIp, AnswersCountriesForIpv6) {
  auto database = openOrFail(defaultPath());
  ASSERT_TRUE(database);
  EXPECT_EQ(database->country(testing::kNoV6Address), "NO");
  EXPECT_EQ(database->country("2a02:cf47:ffff::1"), "NO");  // end of the /29
  EXPECT_EQ(database->country(testing::kJpV6Address), "JP");
  EXPECT_EQ(database->country("2001:218:ffff:ffff::ffff"), "JP");
  EXPECT_EQ(database->country("2001:219::1"), std::nullopt);
}

TEST_F(GeoIp, AnswersIpv4MappedIpv6AsIpv4) {
  auto database = openOrFail(defaultPath());
  ASSERT_TRUE(database);
  EXPECT_EQ(database->country("::ffff:81.2.69.142"), "GB");
  EXPECT_EQ(database->country("::FFFF:89.160.20.112"), "SE");
  EXPECT_EQ(database->country("::ffff:d8a0:5338"), "US");  // 216.160.83.56 in hex
}

TEST_F(GeoIp, UnknownPublicAddressHasNoCountry) {
  auto database = openOrFail(defaultPath());
  ASSERT_TRUE(database);
  EXPECT_EQ(database->country(testing::kUnknownAddress), std::nullopt);
  EXPECT_EQ(database->country("2a00:1450:4001::1"), std::nullopt);
}

TEST_F(GeoIp, TextThatIsNotAnAddressHasNoCountry) {
  auto database = openOrFail(defaultPath());
  ASSERT_TRUE(database);
  for (std::string_view text :
       {"", "unknown", "81.2.69", "81.2.69.142 ", " 81.2.69.142", "81.2.69.142/24", "81.2.69.256",
        "2001:218::1%eth0", "[2001:218::1]", "2001:218::1::2"}) {
    EXPECT_EQ(database->country(text), std::nullopt) << '"' << text << '"';
  }
  EXPECT_EQ(database->country(std::string(200, '1')), std::nullopt);
  // A string_view that is not NUL-terminated: only its own characters count.
  const std::string longer = "81.2.69.1429";
  EXPECT_EQ(database->country(std::string_view(longer).substr(0, 11)), "GB");
}

TEST_F(GeoIp, SpecialAddressesHaveNoCountryEvenWhenTheDatabaseListsThem) {
  const auto path = *directory_ / "with-private.mmdb";
  testing::writeMmdb(path, {{"10.0.0.0/8", "XX"},
                            {"127.0.0.0/8", "XX"},
                            {"192.0.2.0/24", "XX"},
                            {"198.51.100.0/24", "XX"},
                            {"100.64.0.0/10", "XX"},
                            {"2001:db8::/32", "XX"},
                            {"fc00::/7", "XX"},
                            {"fe80::/10", "XX"},
                            {std::string(testing::kGbNetwork), "GB"}});
  auto database = openOrFail(path);
  ASSERT_TRUE(database);
  for (std::string_view address :
       {"10.1.2.3", "127.0.0.1", "192.0.2.10", "198.51.100.7", "100.64.1.1", "2001:db8::1",
        "fd00::1", "fe80::1", "::ffff:10.1.2.3", "::ffff:192.0.2.10"}) {
    EXPECT_EQ(database->country(address), std::nullopt) << address;
  }
  EXPECT_EQ(database->country(testing::kGbAddress), "GB");  // the database itself works
}

TEST_F(GeoIp, UpperCasesTheCode) {
  const auto path = *directory_ / "lower-case.mmdb";
  testing::writeMmdb(path, {{std::string(testing::kGbNetwork), "gb"}});
  auto database = openOrFail(path);
  ASSERT_TRUE(database);
  EXPECT_EQ(database->country(testing::kGbAddress), "GB");
}

TEST_F(GeoIp, FallsBackToTheRegisteredCountry) {
  const auto path = *directory_ / "registered.mmdb";
  testing::writeMmdbRecords(path, {
                                      {std::string(testing::kGbNetwork), "", "AU"},  // no country
                                      {std::string(testing::kSeNetwork), "SE", "DE"},
                                  });
  auto database = openOrFail(path);
  ASSERT_TRUE(database);
  EXPECT_EQ(database->country(testing::kGbAddress), "AU");
  EXPECT_EQ(database->country(testing::kSeAddress), "SE");  // country wins when present
}

TEST_F(GeoIp, ReadsCityDatabasesAndDescribesThem) {
  const auto path = *directory_ / "GeoLite2-City.mmdb";
  testing::writeMmdb(path, testing::defaultTestNetworks(), "GeoLite2-City");
  auto database = openOrFail(path);
  ASSERT_TRUE(database);
  EXPECT_EQ(database->country(testing::kCnAddress), "CN");
  EXPECT_EQ(database->description(), "GeoLite2-City, built " + today() + ", " + path.string());
}

TEST_F(GeoIp, CountsLookupsThatReachTheDatabase) {
  auto database = openOrFail(defaultPath());
  ASSERT_TRUE(database);
  const auto before = counter("geoip_lookups_total");
  database->country(testing::kGbAddress);
  database->country(testing::kUnknownAddress);
  database->country("10.0.0.1");  // special: the database is not consulted
  database->country("garbage");
  EXPECT_EQ(counter("geoip_lookups_total"), before + 2);
}

TEST(GeoIpOpen, MissingFileNamesThePath) {
  TempDir directory;
  const auto path = directory / "GeoLite2-Country.mmdb";
  auto database = GeoIpDatabase::open(path);
  ASSERT_FALSE(database);
  EXPECT_NE(database.error().message.find(path.string()), std::string::npos)
      << database.error().message;
  EXPECT_NE(database.error().message.find(
                "Error opening the specified MaxMind DB file (No such file or directory)"),
            std::string::npos)
      << database.error().message;
}

TEST(GeoIpOpen, GarbageFileNamesThePathAndTheReason) {
  TempDir directory;
  const auto path = directory / "garbage.mmdb";
  testing::writeGarbageAtomically(path);
  auto database = GeoIpDatabase::open(path);
  ASSERT_FALSE(database);
  EXPECT_NE(database.error().message.find(path.string()), std::string::npos)
      << database.error().message;
  EXPECT_NE(database.error().message.find("The MaxMind DB file contains invalid metadata"),
            std::string::npos)
      << database.error().message;
}

TEST(GeoIpOpen, EmptyFileAndDirectoryAreErrors) {
  TempDir directory;
  testing::writeGarbageAtomically(directory / "empty.mmdb", "");
  auto empty = GeoIpDatabase::open(directory / "empty.mmdb");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("empty.mmdb: the file is empty"), std::string::npos)
      << empty.error().message;
  auto folder = GeoIpDatabase::open(directory.path());
  ASSERT_FALSE(folder);
  EXPECT_NE(folder.error().message.find(directory.path().string() + ": not a regular file"),
            std::string::npos)
      << folder.error().message;
}

// Reload tests write their own files: they change them.
class GeoIpReload : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::writeMmdb(path_, testing::defaultTestNetworks());
    database_ = openOrFail(path_);
    ASSERT_TRUE(database_);
  }

  TempDir directory_;
  fs::path path_ = directory_ / "GeoLite2-Country.mmdb";
  std::unique_ptr<GeoIpDatabase> database_;
};

TEST_F(GeoIpReload, UnchangedFileIsNoChange) {
  const auto reloads = counter("geoip_reloads_total");
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "false");
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "false");
  EXPECT_EQ(counter("geoip_reloads_total"), reloads);
}

TEST_F(GeoIpReload, PicksUpAnAtomicReplacement) {
  const auto reloads = counter("geoip_reloads_total");
  testing::writeMmdbAtomically(path_, networksWithGbMovedToSweden());
  EXPECT_EQ(database_->country(testing::kGbAddress), "GB");  // not before the reload
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "true");
  EXPECT_EQ(database_->country(testing::kGbAddress), "SE");
  EXPECT_EQ(database_->country(testing::kJpV6Address), "JP");
  EXPECT_EQ(counter("geoip_reloads_total"), reloads + 1);
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "false");
}

TEST_F(GeoIpReload, PicksUpARewriteInPlace) {
  const auto inode = inodeOf(path_);
  // No lookup runs while perl rewrites the mapped file (see reloadIfChanged's comment).
  testing::writeMmdb(path_, networksWithGbMovedToSweden());
  ASSERT_EQ(inodeOf(path_), inode);
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "true");
  EXPECT_EQ(database_->country(testing::kGbAddress), "SE");
}

TEST_F(GeoIpReload, GarbageIsReportedOnceAndTheOldDatabaseStays) {
  const auto failures = counter("geoip_reload_failures_total");
  testing::writeGarbageAtomically(path_);
  auto reload = database_->reloadIfChanged();
  ASSERT_FALSE(reload);
  EXPECT_NE(reload.error().message.find(path_.string()), std::string::npos)
      << reload.error().message;
  EXPECT_EQ(counter("geoip_reload_failures_total"), failures + 1);
  EXPECT_EQ(database_->country(testing::kGbAddress), "GB");
  EXPECT_EQ(database_->country(testing::kJpV6Address), "JP");

  // The same broken file is not reopened on every poll.
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "false");
  EXPECT_EQ(counter("geoip_reload_failures_total"), failures + 1);

  // Another broken file is a new failure.
  testing::writeGarbageAtomically(path_, "still not a database");
  EXPECT_FALSE(database_->reloadIfChanged());
  EXPECT_EQ(counter("geoip_reload_failures_total"), failures + 2);

  testing::writeMmdbAtomically(path_, networksWithGbMovedToSweden());
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "true");
  EXPECT_EQ(database_->country(testing::kGbAddress), "SE");
}

TEST_F(GeoIpReload, DeletedFileIsReportedOnceAndTheOldDatabaseStays) {
  fs::remove(path_);
  auto reload = database_->reloadIfChanged();
  ASSERT_FALSE(reload);
  EXPECT_NE(reload.error().message.find(path_.string()), std::string::npos);
  EXPECT_EQ(database_->country(testing::kGbAddress), "GB");
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "false");

  testing::writeMmdbAtomically(path_, testing::defaultTestNetworks());
  EXPECT_EQ(outcome(database_->reloadIfChanged()), "true");
  EXPECT_EQ(database_->country(testing::kGbAddress), "GB");
}

TEST_F(GeoIpReload, DescriptionFollowsTheReload) {
  testing::writeMmdbAtomically(path_, testing::defaultTestNetworks(), "GeoIP2-City");
  ASSERT_EQ(outcome(database_->reloadIfChanged()), "true");
  EXPECT_EQ(database_->description().rfind("GeoIP2-City, built ", 0), 0u)
      << database_->description();
}

// Lookups on four threads while the main thread swaps between two databases 50 times: every
// answer comes from one database or the other, and nothing is unmapped under a lookup.
TEST_F(GeoIpReload, LookupsRaceReloadsSafely) {
  const auto gb_file = directory_ / "gb.mmdb";
  const auto se_file = directory_ / "se.mmdb";
  fs::copy_file(path_, gb_file);
  testing::writeMmdb(se_file, networksWithGbMovedToSweden());

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> lookups{0};
  std::atomic<std::uint64_t> unexpected{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const auto answer = database_->country(testing::kGbAddress);
        if (answer != "GB" && answer != "SE") unexpected.fetch_add(1);
        if (database_->country(testing::kJpV6Address) != "JP") unexpected.fetch_add(1);
        lookups.fetch_add(2);
      }
    });
  }

  const auto reloads = counter("geoip_reloads_total");
  int successful_reloads = 0;
  for (int round = 0; round < 50; ++round) {
    testing::replaceAtomically(round % 2 == 0 ? se_file : gb_file, path_);
    auto reload = database_->reloadIfChanged();
    ASSERT_TRUE(reload) << reload.error().message;
    if (*reload) ++successful_reloads;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop.store(true);
  for (auto& reader : readers) reader.join();

  EXPECT_EQ(successful_reloads, 50);
  EXPECT_EQ(counter("geoip_reloads_total"), reloads + 50);
  EXPECT_EQ(unexpected.load(), 0u);
  EXPECT_GT(lookups.load(), 100u);
  EXPECT_EQ(database_->country(testing::kGbAddress), "GB");  // round 49 put gb.mmdb back
}

TEST(MmdbWriter, ThrowsWithPerlsMessage) {
  TempDir directory;
  try {
    testing::writeMmdb(directory / "bad.mmdb", {{"2001::/32", "XX"}});  // the Teredo alias
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("aliased"), std::string::npos) << error.what();
  }
  EXPECT_THROW(testing::writeMmdb(directory / "bad.mmdb", {{"not-a-network", "XX"}}),
               std::runtime_error);
  EXPECT_THROW(testing::writeMmdbAtomically(directory / "bad.mmdb", {{"1.2.3.4/33", "XX"}}),
               std::runtime_error);
  // A failed atomic write leaves no temporary file behind.
  for (const auto& entry : fs::directory_iterator(directory.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".bad.mmdb.tmp"), std::string::npos)
        << entry.path();
  }
}

TEST(MmdbWriter, AtomicWritesChangeTheInode) {
  TempDir directory;
  const auto path = directory / "db.mmdb";
  testing::writeMmdbAtomically(path, testing::defaultTestNetworks());
  struct stat first {};
  ASSERT_EQ(::stat(path.c_str(), &first), 0);
  testing::writeGarbageAtomically(path);
  struct stat second {};
  ASSERT_EQ(::stat(path.c_str(), &second), 0);
  EXPECT_NE(first.st_ino, second.st_ino);
}

struct SpecialCase {
  const char* address;
  bool special;
};

TEST(SpecialAddress, Table) {
  const SpecialCase cases[] = {
      // IPv4 special ranges, at their edges
      {"0.0.0.0", true},
      {"0.255.255.255", true},
      {"1.0.0.0", false},
      {"9.255.255.255", false},
      {"10.0.0.0", true},
      {"10.255.255.255", true},
      {"11.0.0.0", false},
      {"100.63.255.255", false},
      {"100.64.0.0", true},
      {"100.127.255.255", true},
      {"100.128.0.0", false},
      {"127.0.0.1", true},
      {"169.254.1.1", true},
      {"169.255.0.1", false},
      {"172.15.255.255", false},
      {"172.16.0.0", true},
      {"172.31.255.255", true},
      {"172.32.0.0", false},
      {"192.0.0.8", true},
      {"192.0.1.1", false},
      {"192.0.2.1", true},
      {"192.0.3.1", false},
      {"192.168.0.1", true},
      {"192.169.0.1", false},
      {"198.17.255.255", false},
      {"198.18.0.0", true},
      {"198.19.255.255", true},
      {"198.20.0.0", false},
      {"198.51.100.1", true},
      {"198.51.101.1", false},
      {"203.0.113.1", true},
      {"203.0.114.1", false},
      {"223.255.255.255", false},
      {"224.0.0.1", true},
      {"239.255.255.255", true},
      {"240.0.0.1", true},
      {"255.255.255.255", true},
      // ordinary public IPv4
      {"8.8.8.8", false},
      {"81.2.69.142", false},
      {"216.160.83.56", false},
      // IPv6
      {"::", true},
      {"::1", true},
      {"::2", false},
      {"100::1", true},
      {"100::ffff:ffff:ffff:ffff", true},
      {"100:0:0:1::1", false},
      {"2001:db8::1", true},
      {"2001:db8:ffff::1", true},
      {"2001:db9::1", false},
      {"fc00::1", true},
      {"fdff:ffff::1", true},
      {"fe00::1", false},
      {"fe80::1", true},
      {"febf::1", true},
      {"fec0::1", false},
      {"ff02::1", true},
      {"2001:218::1", false},
      {"2a02:cf40::1", false},
      {"64:ff9b::808:808", false},  // NAT64: the embedded IPv4 is not judged
      // IPv4-mapped IPv6 is judged by its IPv4 part
      {"::ffff:10.0.0.1", true},
      {"::ffff:192.0.2.1", true},
      {"::ffff:127.0.0.1", true},
      {"::ffff:8.8.8.8", false},
      {"::ffff:81.2.69.142", false},
      // not an address: no country either
      {"", true},
      {"localhost", true},
      {"1.2.3", true},
      {"1.2.3.4.5", true},
      {"fe80::1%eth0", true},
      {"192.0.2.1:25", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(isSpecialAddress(c.address), c.special) << c.address;
  }
}

}  // namespace
}  // namespace saslguard::enrich
