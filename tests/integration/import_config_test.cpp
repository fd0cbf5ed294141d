// import_config_test.cpp — black box: the built binary converts UVSQ policyd's sample
// configuration, and what it writes passes `saslguard check-config` unchanged.
#include <gtest/gtest.h>

#include <fstream>

#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

TEST(ImportConfig, UvsqPolicydOutputPassesCheckConfig) {
  TempDir dir;
  const auto out = (dir / "saslguard.toml").string();
  const auto converted =
      runSaslguard({"import-config", "--from", "uvsq-policyd",
                    std::string(SASLGUARD_TEST_DIR) + "/cli/cases/uvsq_policyd.cfg", "-o", out});
  ASSERT_EQ(converted.exit_code, 0) << converted.output;
  EXPECT_NE(converted.output.find("unknown key 'listen_backlog'"), std::string::npos)
      << converted.output;
  EXPECT_EQ(converted.output.find("S3cret"), std::string::npos);

  const auto checked = runSaslguard({"check-config", "--config", out});
  ASSERT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("\"24h:1500\""), std::string::npos) << checked.output;
  EXPECT_NE(checked.output.find("127.0.0.1:9093"), std::string::npos);
}

TEST(ImportConfig, AnUnreadableFileFailsWithAMessage) {
  const auto result = runSaslguard({"import-config", "--from", "uvsq-policyd", "/nonexistent.cfg"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("cannot read /nonexistent.cfg"), std::string::npos);
}

}  // namespace
}  // namespace saslguard::testing
