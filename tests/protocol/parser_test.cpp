// parser_test.cpp — golden cases for the policy protocol (cases/NAME.in → cases/NAME.ref, Postfix
// style) and unit tests for limits and reply formatting. Each golden input is fed whole, in one-
// byte pieces and in odd-sized pieces: the transcript must be the same every time.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "common/strings.hpp"
#include "protocol/parser.hpp"
#include "protocol/reply.hpp"

namespace saslguard::protocol {
namespace {

namespace fs = std::filesystem;

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Limits limitsFor(const fs::path& inPath) {
  Limits limits;
  auto path = inPath;
  path.replace_extension(".limits");
  if (!fs::exists(path)) return limits;
  std::istringstream in(readFile(path));
  std::string item;
  while (in >> item) {
    const auto equals = item.find('=');
    const auto name = item.substr(0, equals);
    const auto value = std::stoul(item.substr(equals + 1));
    if (name == "max_line_bytes") limits.max_line_bytes = value;
    if (name == "max_attributes") limits.max_attributes = value;
    if (name == "max_request_bytes") limits.max_request_bytes = value;
  }
  return limits;
}

std::string describe(const Request& request) {
  std::string out = "complete stage=" + std::string(stageName(request.stage())) +
                    " attributes=" + std::to_string(request.attributes().size());
  for (auto attr : {Attr::sasl_username, Attr::client_address, Attr::recipient, Attr::instance}) {
    if (request.has(attr)) {
      out += " " + std::string(attributeName(attr)) + "=" + quoteForLog(request.get(attr));
    }
  }
  std::string unknown;
  for (const auto& a : request.attributes()) {
    bool known = false;
    for (std::size_t i = 0; i < kKnownAttributes; ++i) {
      if (attributeName(static_cast<Attr>(i)) == a.name) known = true;
    }
    if (!known)
      unknown += (unknown.empty() ? "" : ",") + quoteForLog(a.name) + "=" + quoteForLog(a.value);
  }
  if (!unknown.empty()) out += " unknown=[" + unknown + "]";
  return out;
}

// Feeds `input` in pieces of `piece` bytes (0 = all at once) the way a connection does.
std::string transcript(const std::string& input, Limits limits, std::size_t piece) {
  RequestParser parser(limits);
  Request request;
  std::string buffer;
  std::string out;
  int number = 0;
  std::size_t fed = 0;
  while (fed < input.size()) {
    const auto n = piece == 0 ? input.size() : std::min(piece, input.size() - fed);
    buffer.append(input, fed, n);
    fed += n;
    for (;;) {
      const auto outcome = parser.parse(buffer, request);
      if (outcome.status == ParseStatus::Complete) {
        out += "#" + std::to_string(++number) + " " + describe(request) + "\n";
      } else if (outcome.status == ParseStatus::Malformed) {
        out +=
            "#" + std::to_string(++number) + " malformed: " + std::string(outcome.problem) + "\n";
      } else if (outcome.status == ParseStatus::Oversized) {
        out +=
            "#" + std::to_string(++number) + " oversized: " + std::string(outcome.problem) + "\n";
      }
      buffer.erase(0, outcome.consumed);
      if (outcome.status == ParseStatus::NeedMore && outcome.consumed == 0) break;
    }
  }
  out +=
      std::string("end: ") + (parser.inRequest() || !buffer.empty() ? "truncated" : "clean") + "\n";
  return out;
}

TEST(ProtocolGolden, EveryCaseMatchesItsReferenceInAnyPieceSize) {
  const fs::path dir = fs::path(SASLGUARD_TEST_DIR) / "protocol" / "cases";
  const bool regenerate = std::getenv("SASLGUARD_REGENERATE_GOLDEN") != nullptr;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".in") continue;
    ++cases;
    const auto input = readFile(entry.path());
    const auto limits = limitsFor(entry.path());
    auto refPath = entry.path();
    refPath.replace_extension(".ref");
    const auto whole = transcript(input, limits, 0);
    if (regenerate) std::ofstream(refPath, std::ios::binary) << whole;
    EXPECT_EQ(readFile(refPath), whole)
        << entry.path().filename() << " (rerun with SASLGUARD_REGENERATE_GOLDEN=1 to rewrite)";
    for (std::size_t piece : {1, 2, 7, 64}) {
      EXPECT_EQ(whole, transcript(input, limits, piece))
          << entry.path().filename() << " fed in pieces of " << piece;
    }
  }
  EXPECT_GE(cases, 10);
}

std::string realRequest(const std::string& extra = "") {
  return "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
         "client_address=192.0.2.1\nsasl_method=PLAIN\nsasl_username=alice@example.org\n" +
         extra + "\n";
}

TEST(ProtocolLimits, LongCertificateSubjectFitsTheDefaults) {
  const std::string subject(4000, 'x');
  EXPECT_EQ(transcript(realRequest("ccert_subject=" + subject + "\n"), Limits{}, 0).substr(0, 11),
            "#1 complete");
}

TEST(ProtocolLimits, OverlongLineIsDiscardedAndTheNextRequestStillParses) {
  Limits limits{.max_line_bytes = 100, .max_attributes = 50, .max_request_bytes = 100000};
  const auto input = realRequest("ccert_subject=" + std::string(5000, 'y') + "\n") + realRequest();
  for (std::size_t piece : {0, 1, 13, 4096}) {
    EXPECT_EQ(transcript(input, limits, piece),
              "#1 oversized: line too long\n"
              "#2 complete stage=RCPT attributes=6 sasl_username=alice@example.org "
              "client_address=192.0.2.1\nend: clean\n")
        << piece;
  }
}

TEST(ProtocolLimits, RequestLargerThanTheLimitNeverBuffersMoreThanTheLimit) {
  Limits limits{.max_line_bytes = 1000, .max_attributes = 100000, .max_request_bytes = 4096};
  RequestParser parser(limits);
  Request request;
  std::string buffer;
  std::size_t largest = 0;
  ParseOutcome last;
  for (int i = 0; i < 20000; ++i) {  // 20000 attribute lines, never an empty one
    buffer += "x" + std::to_string(i) + "=value\n";
    last = parser.parse(buffer, request);
    buffer.erase(0, last.consumed);
    largest = std::max(largest, buffer.size());
  }
  EXPECT_LE(largest, 4096u + 32u);
  EXPECT_TRUE(parser.inRequest());
  buffer += "\n";
  last = parser.parse(buffer, request);
  EXPECT_EQ(last.status, ParseStatus::Oversized);
  EXPECT_EQ(last.problem, "request too large");
}

TEST(ProtocolLimits, TooManyAttributes) {
  Limits limits{.max_line_bytes = 1000, .max_attributes = 3, .max_request_bytes = 100000};
  EXPECT_EQ(transcript(realRequest(), limits, 0),
            "#1 oversized: too many attributes\nend: clean\n");
}

TEST(ProtocolRequest, AttributesAreResetForEveryRequest) {
  const auto input = realRequest("recipient=first@example.net\n") +
                     "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n\n";
  EXPECT_EQ(transcript(input, Limits{}, 0),
            "#1 complete stage=RCPT attributes=7 sasl_username=alice@example.org "
            "client_address=192.0.2.1 recipient=first@example.net\n"
            "#2 complete stage=END-OF-MESSAGE attributes=2\nend: clean\n");
}

TEST(ProtocolReply, FormatsActionTextAndEmptyLine) {
  std::string out;
  appendReply(out, Action::Reject, "5.7.1 blocked");
  appendReply(out, Action::Dunno, "ignored text");
  appendReply(out, Action::Hold, "");
  appendReply(out, Action::Defer, "4.7.1 try\r\nlater");
  EXPECT_EQ(out,
            "action=REJECT 5.7.1 blocked\n\naction=DUNNO\n\naction=HOLD\n\n"
            "action=DEFER 4.7.1 try  later\n\n");
}

TEST(ProtocolReply, ParsesActionNamesCaseInsensitively) {
  EXPECT_EQ(parseAction("reject"), Action::Reject);
  EXPECT_EQ(parseAction("Hold"), Action::Hold);
  EXPECT_EQ(parseAction("DUNNO"), Action::Dunno);
  EXPECT_EQ(parseAction("permit"), std::nullopt);
  EXPECT_GT(Action::Reject, Action::Defer);
  EXPECT_GT(Action::Defer, Action::Hold);
  EXPECT_GT(Action::Hold, Action::Dunno);
}

}  // namespace
}  // namespace saslguard::protocol
