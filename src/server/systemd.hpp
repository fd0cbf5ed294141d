// systemd.hpp — service manager notifications (sd_notify): READY, RELOADING, STOPPING, STATUS
// and WATCHDOG. Harmless no-ops when not started by systemd (no NOTIFY_SOCKET).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace saslguard::server::systemd {

void ready(std::string_view status);
void reloading();
void stopping();
void status(std::string_view text);
void watchdogPing();
// The interval at which to ping, when the unit has WatchdogSec= set.
std::optional<std::chrono::microseconds> watchdogInterval();

}  // namespace saslguard::server::systemd
