// test_files.hpp — reading and writing whole files in the configuration tests, and the
// SASLGUARD_REGENERATE_* switches that let a test rewrite the golden file it compares against.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace saslguard::config::testing {

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

inline void writeFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// True when the variable is set to 1: the test then writes what it expected instead of failing.
inline bool regenerating(const char* variable) {
  const char* value = std::getenv(variable);
  return value != nullptr && std::string(value) == "1";
}

}  // namespace saslguard::config::testing
