// cases_test.cpp — golden files, Postfix style: every tests/config/cases/NAME.toml is loaded and
// the result compared with NAME.ref: the error text for a broken file, the effective
// configuration for a valid one. Paths print relative to the cases directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "config/loader.hpp"
#include "config/test_files.hpp"

namespace saslguard::config {
namespace {

using testing::readFile;
using testing::regenerating;
using testing::writeFile;

constexpr const char* kRegenerate = "SASLGUARD_REGENERATE_REFS";

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string outcome(const std::filesystem::path& file) {
  LoadRequest request;
  request.config_path = file.string();
  request.config_path_given = true;
  auto settings = load(request);
  const auto text = settings ? effectiveToml(*settings) : settings.error().text() + "\n";
  return replaceAll(text, file.parent_path().string() + "/", "");
}

TEST(ConfigCases, EachFileGivesItsReference) {
  const std::filesystem::path dir = std::string(SASLGUARD_TEST_DIR) + "/config/cases";
  std::vector<std::filesystem::path> cases;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".toml") cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  ASSERT_GE(cases.size(), 10u);
  for (const auto& file : cases) {
    SCOPED_TRACE(file.filename().string());
    auto ref = file;
    ref.replace_extension(".ref");
    const auto actual = outcome(file);
    if (regenerating(kRegenerate)) {
      writeFile(ref, actual);
      continue;
    }
    EXPECT_EQ(actual, readFile(ref))
        << "to accept the new output after review: " << kRegenerate
        << "=1 ./tests/saslguard_config_tests --gtest_filter='ConfigCases.*'";
  }
}

}  // namespace
}  // namespace saslguard::config
