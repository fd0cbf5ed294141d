// office_hours.hpp — weekly office hours ("Mon-Fri 07:00-19:59") in a time zone read from the
// system's tzdata (TZif files under /usr/share/zoneinfo), independent of the process's TZ.
// g++ 12's libstdc++ has no std::chrono::locate_zone, hence the small TZif reader.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace saslguard::engine {

// A time zone's UTC offsets over time, from one TZif file.
class TimeZone {
 public:
  // An IANA name ("Europe/Paris", "UTC") under `zoneinfo_dir`; empty: /etc/localtime (UTC
  // when the system has none).
  static Result<TimeZone> load(std::string_view name,
                               std::string_view zoneinfo_dir = "/usr/share/zoneinfo");
  static TimeZone utc() { return TimeZone(); }

  // Seconds to add to UTC to get the local time at `unix_s`. After the file's last transition
  // (2037 with Debian's "fat" tzdata) the last offset stays in force.
  std::int32_t offsetAt(std::int64_t unix_s) const;
  const std::string& name() const { return name_; }

 private:
  TimeZone() = default;
  std::string name_ = "UTC";
  std::vector<std::int64_t> transitions_;  // ascending unix seconds
  std::vector<std::int32_t> offsets_;      // offset in force from transitions_[i] on
  std::int32_t initial_offset_ = 0;        // before the first transition
};

// Weekly periods in local time, each with inclusive minute bounds: "Mon-Fri 07:00-19:59"
// covers 07:00:00 to 19:59:59. Several periods: "Mon-Fri 07:00-19:59; Sat 08:00-11:59".
// "always" and "never" are accepted too.
class OfficeHours {
 public:
  static Result<OfficeHours> parse(std::string_view spec);
  bool contains(TimePoint at, const TimeZone& zone) const;

 private:
  struct Period {
    std::uint8_t days = 0;  // bit 0 = Monday ... bit 6 = Sunday
    int first_minute = 0;   // minute of the day, inclusive
    int last_minute = 0;    // inclusive
  };
  std::vector<Period> periods_;
};

}  // namespace saslguard::engine
