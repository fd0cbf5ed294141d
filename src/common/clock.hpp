// clock.hpp — wall-clock time as the state store persists it. Everything that depends on time
// takes `now` as a parameter so tests inject it instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace saslguard {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

inline std::int64_t toUnixMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline TimePoint fromUnixMs(std::int64_t ms) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

}  // namespace saslguard
