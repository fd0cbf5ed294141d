// temp_dir.hpp — a temporary directory removed when the test ends.
#pragma once

#include <filesystem>
#include <string>

namespace saslguard::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The whole file as bytes; "" when it cannot be read (a log not written yet).
std::string readWholeFile(const std::filesystem::path& path);

}  // namespace saslguard::testing
