// config_loader_fuzz.cpp — libFuzzer target: the configuration loader on an arbitrary TOML file
// (read through a memfd, as the daemon reads its file). It must answer settings or errors that
// name what is wrong, never crash; accepted settings must render and load again.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/loader.hpp"

namespace {

int memoryFile() {
  static const int fd = ::memfd_create("saslguard-fuzz.toml", 0);
  return fd;
}

bool writeFile(const char* data, std::size_t size) {
  const int fd = memoryFile();
  if (fd < 0 || ::ftruncate(fd, 0) != 0) return false;
  return ::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 65536) return 0;
  if (!writeFile(reinterpret_cast<const char*>(data), size)) std::abort();
  saslguard::config::LoadRequest request;
  request.config_path = "/proc/self/fd/" + std::to_string(memoryFile());
  request.config_path_given = true;
  auto loaded = saslguard::config::load(request);
  if (!loaded) {
    if (loaded.error().text().empty()) std::abort();
    return 0;
  }
  // What check-config prints must be a configuration that loads to the same thing.
  const auto effective = saslguard::config::effectiveToml(*loaded);
  if (effective.find("********") != std::string::npos) return 0;  // a masked secret: not loadable
  if (!writeFile(effective.data(), effective.size())) std::abort();
  auto again = saslguard::config::load(request);
  if (!again || saslguard::config::effectiveToml(*again) != effective) std::abort();
  return 0;
}
