// parser.cpp — see parser.hpp. Framing finds the empty line that ends a request with memchr over
// bytes not yet searched, so a request arriving in many reads is scanned once.
#include "protocol/parser.hpp"

#include <cstring>

namespace saslguard::protocol {
namespace {

std::string_view stripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool validName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

void RequestParser::reset() {
  scanned_ = 0;
  line_start_ = 0;
  lines_ = 0;
  discarding_ = false;
  discard_line_bytes_ = 0;
  discard_line_cr_ = false;
}

ParseOutcome RequestParser::parse(std::string_view input, Request& request) {
  if (discarding_) return discard(input, 0);

  std::size_t pos = scanned_;
  while (pos < input.size()) {
    const void* found = std::memchr(input.data() + pos, '\n', input.size() - pos);
    if (found == nullptr) break;
    const std::size_t newline = static_cast<const char*>(found) - input.data();
    const auto line = stripCr(input.substr(line_start_, newline - line_start_));
    if (line.size() > limits_.max_line_bytes) {
      return startDiscarding(input, newline + 1, "line too long");
    }
    if (line.empty()) {
      if (lines_ == 0) {
        // A blank line before any attribute: tolerated noise, dropped.
        reset();
        return ParseOutcome{ParseStatus::NeedMore, newline + 1, {}};
      }
      return finish(input.substr(0, line_start_), newline + 1, request);
    }
    if (++lines_ > limits_.max_attributes) {
      return startDiscarding(input, newline + 1, "too many attributes");
    }
    if (newline + 1 > limits_.max_request_bytes) {
      return startDiscarding(input, newline + 1, "request too large");
    }
    line_start_ = newline + 1;
    pos = newline + 1;
  }
  scanned_ = input.size();
  if (input.size() - line_start_ > limits_.max_line_bytes + 1) {
    return startDiscarding(input, line_start_, "line too long");
  }
  if (input.size() > limits_.max_request_bytes) {
    return startDiscarding(input, line_start_, "request too large");
  }
  return ParseOutcome{ParseStatus::NeedMore, 0, {}};
}

// Everything before `from` belongs to the bad request and is dropped; from there on, bytes are
// dropped until an empty line ends the request.
ParseOutcome RequestParser::startDiscarding(std::string_view input, std::size_t from,
                                            std::string_view why) {
  const auto reason = why;
  reset();
  discarding_ = true;
  discard_reason_ = reason;
  // `from` is either the start of a line or the start of the unfinished line being discarded.
  auto outcome = discard(input.substr(from), 0);
  outcome.consumed += from;
  return outcome;
}

ParseOutcome RequestParser::discard(std::string_view input, std::size_t offset) {
  std::size_t pos = offset;
  while (pos < input.size()) {
    const void* found = std::memchr(input.data() + pos, '\n', input.size() - pos);
    if (found == nullptr) break;
    const std::size_t newline = static_cast<const char*>(found) - input.data();
    const std::size_t segment = newline - pos;
    const bool emptyLine = (discard_line_bytes_ == 0 && segment == 0) ||
                           (discard_line_bytes_ == 0 && segment == 1 && input[pos] == '\r') ||
                           (discard_line_cr_ && segment == 0);
    if (emptyLine) {
      const auto reason = discard_reason_;
      reset();
      return ParseOutcome{ParseStatus::Oversized, newline + 1, reason};
    }
    discard_line_bytes_ = 0;
    discard_line_cr_ = false;
    pos = newline + 1;
  }
  const std::size_t rest = input.size() - pos;
  if (rest > 0) {
    discard_line_cr_ = discard_line_bytes_ == 0 && rest == 1 && input[pos] == '\r';
    discard_line_bytes_ += rest;
  }
  return ParseOutcome{ParseStatus::NeedMore, input.size(), {}};
}

ParseOutcome RequestParser::finish(std::string_view text, std::size_t consumed, Request& request) {
  reset();
  request.clear();
  std::size_t start = 0;
  while (start < text.size()) {
    const auto newline = text.find('\n', start);
    const auto line = stripCr(text.substr(start, newline - start));
    start = newline + 1;
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) {
      return ParseOutcome{ParseStatus::Malformed, consumed, "line without '='"};
    }
    const auto name = line.substr(0, equals);
    if (!validName(name)) {
      return ParseOutcome{ParseStatus::Malformed, consumed, "invalid attribute name"};
    }
    request.add(name, line.substr(equals + 1));
  }
  if (!request.has(Attr::request)) {
    return ParseOutcome{ParseStatus::Malformed, consumed, "no request attribute"};
  }
  if (request.get(Attr::request) != "smtpd_access_policy") {
    return ParseOutcome{ParseStatus::Malformed, consumed, "request is not smtpd_access_policy"};
  }
  return ParseOutcome{ParseStatus::Complete, consumed, {}};
}

}  // namespace saslguard::protocol
