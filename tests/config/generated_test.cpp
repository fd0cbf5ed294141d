// generated_test.cpp — text generated from the option table: the committed docs and sample file
// must equal the generator's output, the sample must load to the defaults, and the effective
// configuration must load back to the same settings.
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "config/options.hpp"
#include "config/test_files.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::config {
namespace {

using saslguard::testing::TempDir;
using testing::readFile;
using testing::regenerating;
using testing::writeFile;

constexpr const char* kRegenerate = "SASLGUARD_REGENERATE_DOCS";

void expectCommittedCopy(const std::string& relativePath, const std::string& generated) {
  const auto path = std::string(SASLGUARD_SOURCE_DIR) + "/" + relativePath;
  if (regenerating(kRegenerate)) {
    writeFile(path, generated);
    return;
  }
  EXPECT_TRUE(readFile(path) == generated)
      << relativePath << " is out of date with the option table (src/config/options.cpp).\n"
      << "Regenerate it from the build directory with:\n  " << kRegenerate
      << "=1 ./tests/saslguard_config_tests --gtest_filter='GeneratedFiles.*'\n"
      << "then review and commit the result.";
}

TEST(GeneratedFiles, CommittedReferenceMatchesTheOptionTable) {
  expectCommittedCopy("docs/configuration.md", markdownReference());
}

TEST(GeneratedFiles, CommittedSampleMatchesTheOptionTable) {
  expectCommittedCopy("etc/saslguard.toml", sampleToml());
}

TEST(GeneratedFiles, ReferenceListsEveryOptionWithItsNames) {
  const auto reference = markdownReference();
  for (const auto& option : options()) {
    EXPECT_NE(reference.find("| `" + option.key + "` |"), std::string::npos) << option.name();
    EXPECT_NE(reference.find("`" + option.envName() + "`"), std::string::npos) << option.name();
    EXPECT_NE(reference.find("`--" + option.flagName() + "`"), std::string::npos) << option.name();
  }
  for (const auto& section : sections()) {
    EXPECT_NE(reference.find("## [" + section + "]"), std::string::npos) << section;
  }
}

TEST(GeneratedFiles, SampleLoadsToTheDefaults) {
  TempDir dir;
  writeFile(dir / "saslguard.toml", sampleToml());
  LoadRequest request;
  request.config_path = (dir / "saslguard.toml").string();
  request.config_path_given = true;
  auto settings = load(request);
  ASSERT_TRUE(settings) << settings.error().text();
  EXPECT_TRUE(changedOptions(Settings{}, *settings).empty());
}

TEST(GeneratedFiles, SampleShowsEveryOptionCommentedOutAtItsDefault) {
  const auto sample = sampleToml();
  for (const auto& option : options()) {
    EXPECT_NE(sample.find("\n#" + option.key + " = " + formatDefault(option) + "\n"),
              std::string::npos)
        << option.name();
  }
}

// --- effective configuration -----------------------------------------------------------------

Settings loadFile(const std::string& path) {
  LoadRequest request;
  request.config_path = path;
  request.config_path_given = true;
  auto settings = load(request);
  if (!settings) ADD_FAILURE() << settings.error().text();
  return settings.value_or(Settings{});
}

TEST(EffectiveToml, LoadsBackToTheSameSettings) {
  // full.toml changes every option that has an alternative (see loader_test.cpp).
  const auto original = loadFile(std::string(SASLGUARD_TEST_DIR) + "/config/cases/full.toml");
  TempDir dir;
  writeFile(dir / "effective.toml", effectiveToml(original));
  const auto reloaded = loadFile((dir / "effective.toml").string());
  // Secrets are written masked, so they come back as the mask.
  for (const auto* option : changedOptions(original, reloaded)) {
    if (!option->secret) ADD_FAILURE() << option->name();
  }
}

TEST(EffectiveToml, DefaultsLoadBackToTheDefaults) {
  TempDir dir;
  writeFile(dir / "effective.toml", effectiveToml(Settings{}));
  EXPECT_TRUE(changedOptions(Settings{}, loadFile((dir / "effective.toml").string())).empty());
}

TEST(EffectiveToml, ShowsEveryOptionAndMarksChangedOnes) {
  Settings settings;
  settings.server.threads = 8;
  settings.source_path = "/etc/saslguard/saslguard.toml";
  const auto text = effectiveToml(settings);
  EXPECT_NE(text.find("# Configuration file: /etc/saslguard/saslguard.toml\n"), std::string::npos);
  EXPECT_NE(text.find("\n[server]\n"), std::string::npos);
  EXPECT_NE(text.find("\nthreads = 8  # default: 0\n"), std::string::npos);
  EXPECT_NE(text.find("\nmax_connections = 4096\n"), std::string::npos);
  EXPECT_NE(text.find("\n[detectors.denylist]\n"), std::string::npos);
  for (const auto& option : options()) {
    EXPECT_NE(text.find("\n" + option.key + " = "), std::string::npos) << option.name();
  }
}

}  // namespace
}  // namespace saslguard::config
