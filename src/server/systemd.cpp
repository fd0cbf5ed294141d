// systemd.cpp — see systemd.hpp.
#include "server/systemd.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

namespace saslguard::server::systemd {

static void notify(const std::string& state) {
  sd_notify(0, state.c_str());
}

void ready(std::string_view text) {
  notify("READY=1\nSTATUS=" + std::string(text));
}

void reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void stopping() {
  notify("STOPPING=1");
}
void status(std::string_view text) {
  notify("STATUS=" + std::string(text));
}
void watchdogPing() {
  notify("WATCHDOG=1");
}

std::optional<std::chrono::microseconds> watchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace saslguard::server::systemd
