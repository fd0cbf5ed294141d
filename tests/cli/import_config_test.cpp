// import_config_test.cpp — `import-config --from uvsq-policyd` as golden files: cases/NAME.cfg is
// converted and compared with cases/NAME.toml (the TOML) and cases/NAME.notes (what it could not
// map). SASLGUARD_REGENERATE_GOLDEN=1 rewrites the expected files from the current output.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "cli/import_config.hpp"

namespace saslguard::cli {
namespace {

const std::string kCases = std::string(SASLGUARD_TEST_DIR) + "/cli/cases/";

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void expectGolden(const std::string& path, const std::string& actual) {
  if (std::getenv("SASLGUARD_REGENERATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
  }
  EXPECT_EQ(readFile(path), actual)
      << "golden file " << path << " differs; SASLGUARD_REGENERATE_GOLDEN=1 rewrites it";
}

TEST(ImportUvsqPolicyd, SampleConfigurationMatchesTheGoldenFiles) {
  const auto result = importUvsqPolicyd(readFile(kCases + "uvsq_policyd.cfg"), "uvsq_policyd.cfg");
  expectGolden(kCases + "uvsq_policyd.toml", result.toml);
  std::string notes;
  for (const auto& note : result.notes) notes += note + "\n";
  expectGolden(kCases + "uvsq_policyd.notes", notes);
}

TEST(ImportUvsqPolicyd, TheLastLineCountsWithoutANewlineUnlikePolicyd) {
  const auto result = importUvsqPolicyd("port=9093\nwhitelist=boss", "p.cfg");
  EXPECT_NE(result.toml.find(R"(whitelist_accounts = ["boss"])"), std::string::npos) << result.toml;
}

TEST(ImportUvsqPolicyd, ThePasswordIsNeverCopied) {
  const auto result = importUvsqPolicyd("dbuser=u\ndbpass=hunter2\ndbname=policyd\n", "p.cfg");
  EXPECT_EQ(result.toml.find("hunter2"), std::string::npos);
  EXPECT_NE(result.toml.find("mysql://u:********@127.0.0.1:3306/policyd"), std::string::npos);
}

TEST(ImportUvsqPolicyd, ABadQuotaIsReportedAndReplacedByTheDefault) {
  const auto result = importUvsqPolicyd("defaultquota=lots\nbind=::1\nport=9093\n", "p.cfg");
  EXPECT_NE(result.toml.find(R"(windows = ["24h:1500"])"), std::string::npos);
  EXPECT_NE(result.toml.find(R"(listen = ["[::1]:9093"])"), std::string::npos);
  ASSERT_FALSE(result.notes.empty());
  EXPECT_NE(result.notes[0].find("defaultquota 'lots'"), std::string::npos);
}

TEST(ImportAbusixAuthPpd, SampleConfigurationMatchesTheGoldenFiles) {
  const auto result = importAbusixAuthPpd(readFile(kCases + "abusix_auth_ppd.ini"),
                                          "abusix_auth_ppd.ini", "/opt/abusix-auth-ppd");
  expectGolden(kCases + "abusix_auth_ppd.toml", result.toml);
  std::string notes;
  for (const auto& note : result.notes) notes += note + "\n";
  expectGolden(kCases + "abusix_auth_ppd.notes", notes);
}

TEST(ImportAbusixAuthPpd, NoActionMeansLogOnlyAndNoRegistryAnswer) {
  const auto result = importAbusixAuthPpd("apikey = k\n", "a.ini", "/opt");
  EXPECT_NE(result.toml.find("action = \"LOG\""), std::string::npos) << result.toml;
  EXPECT_EQ(result.toml.find("[registry]"), std::string::npos) << result.toml;
  EXPECT_NE(result.toml.find("listen = [\"127.0.0.1:9998\"]"), std::string::npos);
}

TEST(ImportAbusixAuthPpd, ShellSyntaxInTheCommandIsReportedAndNeverInterpreted) {
  const auto result =
      importAbusixAuthPpd("apikey=k\ncommand=/usr/bin/logger -t x $(id)\n", "a.ini", "/opt");
  EXPECT_NE(result.toml.find(R"x(hook_command = ["/usr/bin/logger", "-t", "x", "$(id)"])x"),
            std::string::npos)
      << result.toml;
  bool noted = false;
  for (const auto& note : result.notes) noted = noted || note.find("shell syntax") != note.npos;
  EXPECT_TRUE(noted);
}

TEST(ImportAbusixAuthPpd, TheRedisPasswordIsNeverCopied) {
  const auto result = importAbusixAuthPpd("apikey=k\n[redis]\npassword=hunter2\n", "a.ini", "/");
  EXPECT_EQ(result.toml.find("hunter2"), std::string::npos);
}

TEST(ImportGeoipPolicyd, EnvironmentFileAndCommandLineMatchTheGoldenFiles) {
  const auto result =
      importGeoipPolicyd(readFile(kCases + "geoip_policyd.env"), "geoip_policyd.env");
  expectGolden(kCases + "geoip_policyd.toml", result.toml);
  std::string notes;
  for (const auto& note : result.notes) notes += note + "\n";
  expectGolden(kCases + "geoip_policyd.notes", notes);
  EXPECT_EQ(result.toml.find("hunter2"), std::string::npos);
  EXPECT_EQ(result.toml.find("s3cret"), std::string::npos);
  // The environment wins over the flag when it is not empty (max countries), not when it is.
  EXPECT_NE(result.toml.find("max_countries = 2\n"), std::string::npos);
  EXPECT_NE(result.toml.find("max_ips = 20\n"), std::string::npos);
}

TEST(ImportGeoipPolicyd, DefaultsAreGeoipPolicydsSenderModeOnPort4646) {
  const auto result = importGeoipPolicyd("geoip-policyd server\n", "cmdline");
  EXPECT_NE(result.toml.find(R"(listen = ["127.0.0.1:4646"])"), std::string::npos) << result.toml;
  EXPECT_NE(result.toml.find(R"(source = "sender")"), std::string::npos);
  EXPECT_NE(result.toml.find(R"(database = "/usr/share/GeoIP/GeoLite2-City.mmdb")"),
            std::string::npos);
}

}  // namespace
}  // namespace saslguard::cli
