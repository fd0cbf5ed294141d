// office_hours.hpp — weekly office hours ("Mon-Fri 07:00-19:59") in a time zone read from the
// system's tzdata (TZif files under /usr/share/zoneinfo), independent of the process's TZ.
// g++ 12's libstdc++ has no std::chrono::locate_zone, hence the small TZif reader.
#pragma once

#include <cstdint>
#include <optional>
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
  // (2037 in "fat" files, years earlier in "slim" ones) the file's POSIX TZ rule applies.
  std::int32_t offsetAt(std::int64_t unix_s) const;
  const std::string& name() const { return name_; }

  // The rule of a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" (the TZif footer).
  struct PosixRule {
    struct Change {
      enum class Kind { kMonthWeekDay, kJulianNoLeap, kZeroBasedDay } kind = Kind::kMonthWeekDay;
      int month = 0, week = 0, weekday = 0;  // Mm.w.d: week 5 = the last one
      int day = 0;                           // Jn (1..365, no Feb 29) or n (0..365)
      std::int32_t time_s = 7200;            // local time of the change, default 02:00
    };
    std::int32_t std_offset = 0;  // seconds east of UTC
    bool has_dst = false;
    std::int32_t dst_offset = 0;
    Change start, end;  // start: standard -> daylight time; end: back
    std::int32_t offsetAt(std::int64_t unix_s) const;
  };
  static Result<PosixRule> parsePosixRule(std::string_view text);

 private:
  TimeZone() = default;
  std::string name_ = "UTC";
  std::vector<std::int64_t> transitions_;  // ascending unix seconds
  std::vector<std::int32_t> offsets_;      // offset in force from transitions_[i] on
  std::int32_t initial_offset_ = 0;        // before the first transition
  std::optional<PosixRule> rule_;          // after the last transition
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
