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

Result<int> parseMinute(std::string_view text) {
  text = trim(text);
  int hours = 0;
  int minutes = 0;
  if (text.size() != 5 || text[2] != ':')
    return fail("expected HH:MM, got '" + std::string(text) + "'");
  auto h = std::from_chars(text.data(), text.data() + 2, hours);
  auto m = std::from_chars(text.data() + 3, text.data() + 5, minutes);
  if (h.ec != std::errc() || h.ptr != text.data() + 2 || m.ec != std::errc() ||
      m.ptr != text.data() + 5 || hours > 23 || minutes > 59) {
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
  return zone;
}

std::int32_t TimeZone::offsetAt(std::int64_t unix_s) const {
  const auto next = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
  if (next == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<std::size_t>(next - transitions_.begin() - 1)];
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
