// policy_parser_fuzz.cpp — libFuzzer target: the policy protocol parser fed an arbitrary byte
// stream, split into reads at fuzzer-chosen points as a socket would deliver it. Checks the
// parser's promises: it always makes progress or asks for more, never consumes past its input,
// and a complete request's attributes are well-formed lines.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/parser.hpp"

using saslguard::protocol::ParseStatus;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // The first byte picks small limits sometimes, so the oversize paths are reached too.
  saslguard::protocol::Limits limits;
  if (data[0] & 1) limits = {64, 8, 256};
  const std::size_t read_size = 1 + (data[0] >> 1);  // 1..128 bytes per "read"
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  saslguard::protocol::RequestParser parser(limits);
  saslguard::protocol::Request request;
  std::string buffer;
  std::size_t offered = 0;
  while (offered < stream.size() || !buffer.empty()) {
    const auto take = std::min(read_size, stream.size() - offered);
    buffer.append(stream.substr(offered, take));
    offered += take;
    const auto outcome = parser.parse(buffer, request);
    check(outcome.consumed <= buffer.size());
    if (outcome.status == ParseStatus::Complete) {
      for (const auto& attribute : request.attributes()) {
        check(attribute.name.find('\n') == std::string_view::npos);
        check(attribute.value.find('\n') == std::string_view::npos);
      }
      (void)request.stage();
    }
    if (outcome.status == ParseStatus::NeedMore && outcome.consumed == 0) {
      if (take == 0) break;  // the stream ended inside a request
      continue;
    }
    check(outcome.consumed > 0 || outcome.status != ParseStatus::NeedMore);
    buffer.erase(0, outcome.consumed);
    if (outcome.consumed == 0 && take == 0) break;
  }
  return 0;
}
