// files.cpp — see files.hpp.
#include "common/files.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/strings.hpp"

namespace saslguard {

Result<std::string> readFirstLine(const std::string& path, std::string_view option) {
  std::ifstream in(path);
  if (!in) {
    return fail(std::string(option) + ": cannot read " + path + ": " + std::strerror(errno));
  }
  std::string line;
  std::getline(in, line);
  auto value = std::string(trim(line));
  if (value.empty()) return fail(std::string(option) + ": " + path + " is empty");
  return value;
}

}  // namespace saslguard
