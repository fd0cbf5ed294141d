// files.cpp — see files.hpp.
#include "common/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <filesystem>
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

Result<std::vector<std::string>> readLines(const std::string& path, std::string_view option) {
  std::ifstream in(path);
  if (!in) {
    return fail(std::string(option) + ": cannot read " + path + ": " + std::strerror(errno));
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    auto trimmed = trim(line);
    if (!trimmed.empty()) lines.emplace_back(trimmed);
  }
  return lines;
}

namespace {

Result<void> writeAll(int fd, std::string_view content) {
  while (!content.empty()) {
    const auto written = ::write(fd, content.data(), content.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return fail(std::string("write: ") + std::strerror(errno));
    }
    content.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

}  // namespace

Result<void> writeFileAtomically(const std::string& path, std::string_view content) {
  const std::filesystem::path target(path);
  const auto directory = target.has_parent_path() ? target.parent_path() : ".";
  std::string temporary = (directory / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) {
    return fail("cannot create a temporary file in " + directory.string() + ": " +
                std::strerror(errno));
  }
  struct stat old {};
  const mode_t mode = ::stat(path.c_str(), &old) == 0 ? (old.st_mode & 07777) : 0644;
  auto written = writeAll(fd, content);
  if (written && ::fchmod(fd, mode) != 0)
    written = fail(std::string("chmod: ") + std::strerror(errno));
  if (written && ::fsync(fd) != 0) written = fail(std::string("fsync: ") + std::strerror(errno));
  ::close(fd);
  if (written && ::rename(temporary.c_str(), path.c_str()) != 0) {
    written = fail("rename to " + path + ": " + std::strerror(errno));
  }
  if (!written) {
    ::unlink(temporary.c_str());
    return fail("cannot write " + path + ": " + written.error().message);
  }
  if (const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY); dir >= 0) {
    ::fsync(dir);  // the rename itself reaches the disk
    ::close(dir);
  }
  return {};
}

}  // namespace saslguard
