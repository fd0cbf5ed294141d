// parser.hpp — incremental framing and parsing of policy requests from a byte stream: name=value
// lines ended by an empty line, LF or CRLF. Bounded: a line, a request or an attribute count over
// its limit is discarded up to the end of that request and reported, never buffered without end.
#pragma once

#include <cstddef>
#include <string_view>

#include "protocol/request.hpp"

namespace saslguard::protocol {

struct Limits {
  std::size_t max_line_bytes = 16384;
  std::size_t max_attributes = 256;
  std::size_t max_request_bytes = 65536;
};

enum class ParseStatus {
  NeedMore,   // no complete request yet; read more bytes
  Complete,   // `request` holds a valid request
  Malformed,  // a complete request that is not a valid policy request (see `problem`)
  Oversized,  // a request over a limit was discarded up to its end (see `problem`)
};

struct ParseOutcome {
  ParseStatus status = ParseStatus::NeedMore;
  // Bytes at the front of the input the caller may drop now. For Complete, the request's views
  // point into those bytes: drop them only after the request has been handled.
  std::size_t consumed = 0;
  std::string_view problem;  // static text for Malformed / Oversized
};

class RequestParser {
 public:
  explicit RequestParser(Limits limits = {}) : limits_(limits) {}

  // `input` starts at the first byte the caller has not dropped yet.
  ParseOutcome parse(std::string_view input, Request& request);

  // True while a request has begun but not ended (the connection closing now truncates it).
  bool inRequest() const { return scanned_ > 0 || discarding_; }

 private:
  ParseOutcome discard(std::string_view input, std::size_t offset);
  ParseOutcome startDiscarding(std::string_view input, std::size_t from, std::string_view why);
  ParseOutcome finish(std::string_view text, std::size_t consumed, Request& request);
  void reset();

  Limits limits_;
  std::size_t scanned_ = 0;     // bytes of the current request already searched for newlines
  std::size_t line_start_ = 0;  // offset of the current line within the current request
  std::size_t lines_ = 0;       // attribute lines seen in the current request
  bool discarding_ = false;
  std::size_t discard_line_bytes_ = 0;  // bytes of the current line seen while discarding
  bool discard_line_cr_ = false;        // that line so far is exactly "\r"
  std::string_view discard_reason_;
};

}  // namespace saslguard::protocol
