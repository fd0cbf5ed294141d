// time_units.hpp — the time conversions the embedded store shares: whole unix seconds as the
// windows and sets keep them, and whether a mark is still in force at a given time.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/clock.hpp"
#include "store/store.hpp"

namespace saslguard::store {

inline std::int64_t floorSeconds(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
}

inline std::uint32_t toUnixSeconds32(std::int64_t unix_s) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(unix_s, 0, UINT32_MAX));
}

// A mark whose expiry has passed counts as absent.
inline bool isLive(const Mark& mark, TimePoint now) {
  return !mark.expires || *mark.expires > now;
}

}  // namespace saslguard::store
