// office_hours.cpp — see office_hours.hpp. TZif layout: RFC 8536 (version 2+ files carry a
// second header with 64-bit transition times, which is the one read here).
#include "engine/office_hours.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>

#include "common/strings.hpp"

namespace saslguard::engine {
namespace {

std::int64_t readBigEndian(const std::string& data, std::size_t at, std::size_t bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(data[at + i]);
  }
  if (bytes == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(value));
  return static_cast<std::int64_t>(value);
}

struct Counts {
  std::size_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
  std::size_t dataBytes(std::size_t time_bytes) const {
    return time * time_bytes + time + type * 6 + chars + leap * (time_bytes + 4) + isstd + isut;
  }
};

Counts readCounts(const std::string& data, std::size_t at) {
  Counts c;
  c.isut = static_cast<std::size_t>(readBigEndian(data, at + 20, 4));
  c.isstd = static_cast<std::size_t>(readBigEndian(data, at + 24, 4));
  c.leap = static_cast<std::size_t>(readBigEndian(data, at + 28, 4));
  c.time = static_cast<std::size_t>(readBigEndian(data, at + 32, 4));
  c.type = static_cast<std::size_t>(readBigEndian(data, at + 36, 4));
  c.chars = static_cast<std::size_t>(readBigEndian(data, at + 40, 4));
  return c;
}

constexpr std::size_t kHeaderBytes = 44;
constexpr std::string_view kDayNames[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

Result<int> parseDay(std::string_view text) {
  const auto lowered = toLowerAscii(trim(text));
  for (int i = 0; i < 7; ++i) {
    if (lowered == kDayNames[i]) return i;
  }
  return fail("unknown day '" + std::string(trim(text)) + "' (expected Mon, Tue, ... Sun)");
}

// "07:00" or "7:00".
Result<int> parseMinute(std::string_view text) {
  text = trim(text);
  const auto colon = text.find(':');
  int hours = -1;
  int minutes = -1;
  if (colon == 1 || colon == 2) {
    const auto* end = text.data() + text.size();
    auto h = std::from_chars(text.data(), text.data() + colon, hours);
    auto m = std::from_chars(text.data() + colon + 1, end, minutes);
    if (h.ptr != text.data() + colon || m.ptr != end || text.size() != colon + 3) hours = -1;
  }
  if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59) {
    return fail("expected HH:MM from 00:00 to 23:59, got '" + std::string(text) + "'");
  }
  return hours * 60 + minutes;
}

}  // namespace

Result<TimeZone> TimeZone::load(std::string_view name, std::string_view zoneinfo_dir) {
  const auto trimmed = trim(name);
  std::string path;
  if (trimmed.empty()) {
    path = "/etc/localtime";
  } else {
    if (trimmed.front() == '/' || trimmed.find("..") != std::string_view::npos) {
      return fail("time zone '" + std::string(trimmed) +
                  "': expected an IANA name such as Europe/Paris");
    }
    path = std::string(zoneinfo_dir) + "/" + std::string(trimmed);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (trimmed.empty()) return utc();  // no system zone configured: UTC
    return fail("time zone '" + std::string(trimmed) + "': no such zone (" + path + ")");
  }
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto bad = [&](std::string_view why) {
    return fail("time zone file " + path + ": " + std::string(why));
  };
  if (data.size() < kHeaderBytes || data.compare(0, 4, "TZif") != 0) return bad("not a TZif file");

  std::size_t at = 0;
  std::size_t time_bytes = 4;
  Counts counts = readCounts(data, 0);
  if (data[4] >= '2') {  // skip the 32-bit block, read the 64-bit one
    at = kHeaderBytes + counts.dataBytes(4);
    if (data.size() < at + kHeaderBytes || data.compare(at, 4, "TZif") != 0) {
      return bad("truncated");
    }
    counts = readCounts(data, at);
    time_bytes = 8;
  }
  at += kHeaderBytes;
  if (counts.type == 0 || data.size() < at + counts.dataBytes(time_bytes)) return bad("truncated");

  TimeZone zone;
  zone.name_ = trimmed.empty() ? "localtime" : std::string(trimmed);
  const std::size_t times_at = at;
  const std::size_t indices_at = times_at + counts.time * time_bytes;
  const std::size_t types_at = indices_at + counts.time;
  const auto typeOffset = [&](std::size_t type) {
    return static_cast<std::int32_t>(readBigEndian(data, types_at + type * 6, 4));
  };
  zone.initial_offset_ = typeOffset(0);
  for (std::size_t i = 0; i < counts.time; ++i) {
    const auto type = static_cast<unsigned char>(data[indices_at + i]);
    if (type >= counts.type) return bad("transition to an undefined type");
    zone.transitions_.push_back(readBigEndian(data, times_at + i * time_bytes, time_bytes));
    zone.offsets_.push_back(typeOffset(type));
  }
  if (!std::is_sorted(zone.transitions_.begin(), zone.transitions_.end())) {
    return bad("transitions out of order");
  }
  // Version 2+ files end with "\n<POSIX TZ string>\n" for the times after the last transition.
  const std::size_t footer_at = at + counts.dataBytes(time_bytes);
  if (time_bytes == 8 && footer_at < data.size() && data[footer_at] == '\n') {
    const auto end = data.find('\n', footer_at + 1);
    if (end != std::string::npos && end > footer_at + 1) {
      auto rule = parsePosixRule(std::string_view(data).substr(footer_at + 1, end - footer_at - 1));
      if (!rule) return bad("footer: " + rule.error().message);
      zone.rule_ = *rule;
    }
  }
  return zone;
}

std::int32_t TimeZone::offsetAt(std::int64_t unix_s) const {
  if (rule_ && (transitions_.empty() || unix_s >= transitions_.back())) {
    return rule_->offsetAt(unix_s);
  }
  const auto next = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
  if (next == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<std::size_t>(next - transitions_.begin() - 1)];
}

// ---- POSIX TZ rules ---------------------------------------------------------------------------

namespace {

// Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
std::int64_t daysFromCivil(std::int64_t year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * static_cast<unsigned>(month + (month > 2 ? -3 : 9)) + 2) / 5 +
                               static_cast<unsigned>(day) - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<std::int64_t>(day_of_era) - 719468;
}

std::int64_t yearOfDays(std::int64_t days) {  // the civil year holding a day (days_from_civil^-1)
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto day_of_era = static_cast<unsigned>(days - era * 146097);
  const unsigned year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const unsigned day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const unsigned mp = (5 * day_of_year + 2) / 153;
  return static_cast<std::int64_t>(year_of_era) + era * 400 + (mp >= 10 ? 1 : 0);
}

bool isLeap(std::int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// The unix second a change happens in `year`, given the offset in force before it.
std::int64_t changeAt(const TimeZone::PosixRule::Change& change, std::int64_t year,
                      std::int32_t offset_before) {
  using Kind = TimeZone::PosixRule::Change::Kind;
  std::int64_t days = 0;
  switch (change.kind) {
    case Kind::kJulianNoLeap:
      days =
          daysFromCivil(year, 1, 1) + change.day - 1 + (isLeap(year) && change.day >= 60 ? 1 : 0);
      break;
    case Kind::kZeroBasedDay:
      days = daysFromCivil(year, 1, 1) + change.day;
      break;
    case Kind::kMonthWeekDay: {
      const std::int64_t first = daysFromCivil(year, change.month, 1);
      const std::int64_t next_month = change.month == 12 ? daysFromCivil(year + 1, 1, 1)
                                                         : daysFromCivil(year, change.month + 1, 1);
      const int first_weekday = static_cast<int>(((first % 7) + 7 + 4) % 7);  // 0 = Sunday
      days = first + (change.weekday - first_weekday + 7) % 7 + (change.week - 1) * 7;
      while (days >= next_month) days -= 7;  // week 5: the last one
      break;
    }
  }
  return days * 86400 + change.time_s - offset_before;
}

class RuleReader {
 public:
  explicit RuleReader(std::string_view text) : text_(text) {}
  bool done() const { return at_ >= text_.size(); }
  bool take(char c) {
    if (done() || text_[at_] != c) return false;
    ++at_;
    return true;
  }
  bool name() {
    if (take('<')) {
      const auto end = text_.find('>', at_);
      if (end == std::string_view::npos) return false;
      at_ = end + 1;
      return true;
    }
    const auto begin = at_;
    while (!done() &&
           ((text_[at_] >= 'a' && text_[at_] <= 'z') || (text_[at_] >= 'A' && text_[at_] <= 'Z'))) {
      ++at_;
    }
    return at_ - begin >= 3;
  }
  // [+-]hh[:mm[:ss]] in seconds; `hours_max` 24 for offsets, 167 for change times.
  std::optional<std::int32_t> duration(int hours_max) {
    int sign = 1;
    if (take('-')) {
      sign = -1;
    } else {
      take('+');
    }
    std::int32_t total = 0;
    for (int part = 0; part < 3; ++part) {
      if (part > 0 && !take(':')) break;
      auto value = number();
      if (!value || (part == 0 && *value > hours_max) || (part > 0 && *value > 59)) return {};
      total += static_cast<std::int32_t>(*value) * (part == 0 ? 3600 : part == 1 ? 60 : 1);
    }
    return sign * total;
  }
  std::optional<int> number() {
    const auto begin = at_;
    int value = 0;
    while (!done() && text_[at_] >= '0' && text_[at_] <= '9' && at_ - begin < 4) {
      value = value * 10 + (text_[at_++] - '0');
    }
    if (at_ == begin) return {};
    return value;
  }
  std::optional<TimeZone::PosixRule::Change> change() {
    using Kind = TimeZone::PosixRule::Change::Kind;
    TimeZone::PosixRule::Change out;
    if (take('M')) {
      auto month = number();
      if (!month || !take('.')) return {};
      auto week = number();
      if (!week || !take('.')) return {};
      auto weekday = number();
      if (!weekday || *month < 1 || *month > 12 || *week < 1 || *week > 5 || *weekday > 6)
        return {};
      out.month = *month;
      out.week = *week;
      out.weekday = *weekday;
    } else {
      out.kind = take('J') ? Kind::kJulianNoLeap : Kind::kZeroBasedDay;
      auto day = number();
      if (!day || *day > 365 || (out.kind == Kind::kJulianNoLeap && *day < 1)) return {};
      out.day = *day;
    }
    if (take('/')) {
      auto time = duration(167);
      if (!time) return {};
      out.time_s = *time;
    }
    return out;
  }

 private:
  std::string_view text_;
  std::size_t at_ = 0;
};

}  // namespace

Result<TimeZone::PosixRule> TimeZone::parsePosixRule(std::string_view text) {
  const auto bad = [&] { return fail("unsupported POSIX TZ rule '" + std::string(text) + "'"); };
  RuleReader reader(text);
  PosixRule rule;
  if (!reader.name()) return bad();
  auto offset = reader.duration(24);
  if (!offset) return bad();
  rule.std_offset = -*offset;  // POSIX counts west of Greenwich
  if (reader.done()) return rule;
  if (!reader.name()) return bad();
  rule.has_dst = true;
  rule.dst_offset = rule.std_offset + 3600;
  if (!reader.done() && !reader.take(',')) {
    auto dst = reader.duration(24);
    if (!dst || !reader.take(',')) return bad();
    rule.dst_offset = -*dst;
  }
  auto start = reader.change();
  if (!start || !reader.take(',')) return bad();
  auto end = reader.change();
  if (!end || !reader.done()) return bad();
  rule.start = *start;
  rule.end = *end;
  return rule;
}

std::int32_t TimeZone::PosixRule::offsetAt(std::int64_t unix_s) const {
  if (!has_dst) return std_offset;
  const std::int64_t local_days =
      (unix_s + std_offset >= 0 ? unix_s + std_offset : unix_s + std_offset - 86399) / 86400;
  const std::int64_t year = yearOfDays(local_days);
  const std::int64_t starts = changeAt(start, year, std_offset);
  const std::int64_t ends = changeAt(end, year, dst_offset);
  const bool daylight = starts < ends ? unix_s >= starts && unix_s < ends   // northern
                                      : unix_s >= starts || unix_s < ends;  // southern
  return daylight ? dst_offset : std_offset;
}

Result<OfficeHours> OfficeHours::parse(std::string_view spec) {
  OfficeHours hours;
  const auto whole = toLowerAscii(trim(spec));
  if (whole == "never") return hours;
  if (whole == "always") {
    hours.periods_.push_back({0x7f, 0, 24 * 60 - 1});
    return hours;
  }
  for (const auto part : split(spec, ';')) {
    const auto text = trim(part);
    if (text.empty()) continue;
    const auto space = text.find(' ');
    if (space == std::string_view::npos) {
      return fail("expected DAYS HH:MM-HH:MM (e.g. Mon-Fri 07:00-19:59), got '" +
                  std::string(text) + "'");
    }
    Period period;
    for (const auto item : split(text.substr(0, space), ',')) {
      const auto dash = item.find('-');
      auto first = parseDay(item.substr(0, dash));
      if (!first) return tl::unexpected(first.error());
      int last = *first;
      if (dash != std::string_view::npos) {
        auto end = parseDay(item.substr(dash + 1));
        if (!end) return tl::unexpected(end.error());
        last = *end;
      }
      for (int day = *first;; day = (day + 1) % 7) {  // Fri-Mon wraps over the weekend
        period.days = static_cast<std::uint8_t>(period.days | (1u << day));
        if (day == last) break;
      }
    }
    const auto times = trim(text.substr(space + 1));
    const auto dash = times.find('-');
    if (dash == std::string_view::npos) {
      return fail("expected a time range HH:MM-HH:MM, got '" + std::string(times) + "'");
    }
    auto first = parseMinute(times.substr(0, dash));
    if (!first) return tl::unexpected(first.error());
    auto last = parseMinute(times.substr(dash + 1));
    if (!last) return tl::unexpected(last.error());
    if (*last < *first) {
      return fail("time range '" + std::string(times) + "' ends before it starts");
    }
    period.first_minute = *first;
    period.last_minute = *last;
    hours.periods_.push_back(period);
  }
  if (hours.periods_.empty()) return fail("no office hours given (use \"never\" for none)");
  return hours;
}

bool OfficeHours::contains(TimePoint at, const TimeZone& zone) const {
  if (periods_.empty()) return false;
  const std::int64_t utc_s = toUnixMs(at) / 1000;
  const std::int64_t local_s = utc_s + zone.offsetAt(utc_s);
  const std::int64_t days = local_s >= 0 ? local_s / 86400 : (local_s - 86399) / 86400;
  const int weekday = static_cast<int>(((days % 7) + 7 + 3) % 7);  // 1970-01-01 was a Thursday
  const int minute = static_cast<int>((local_s - days * 86400) / 60);
  for (const auto& period : periods_) {
    if ((period.days & (1u << weekday)) != 0 && minute >= period.first_minute &&
        minute <= period.last_minute) {
      return true;
    }
  }
  return false;
}

}  // namespace saslguard::engine
