// template_test.cpp — expandTemplate() as the operator's subject and body templates use it:
// every documented placeholder, unknown ones left alone, values never expanded a second time.
#include <gtest/gtest.h>

#include "notify/notifier.hpp"

namespace saslguard::notify {
namespace {

Notice notice() {
  Notice n;
  n.account = "alice@example.org";
  n.detector = "geo";
  n.action = "HOLD";
  n.reason = "4 countries in 1 h";
  n.evidence = R"({"countries":["DE","FR","NG","VN"]})";
  n.client_address = "198.51.100.7";
  n.at = fromUnixMs(1795417937000);
  n.attributes = {{"helo_name", "first"}, {"sender", "a@b"}, {"helo_name", "second"}};
  return n;
}

TEST(Template, ReplacesEveryDocumentedPlaceholder) {
  EXPECT_EQ(
      expandTemplate("{account}|{detector}|{action}|{reason}|{client_address}|{time}", notice()),
      "alice@example.org|geo|HOLD|4 countries in 1 h|198.51.100.7|2026-11-23T07:12:17Z");
  EXPECT_EQ(expandTemplate("e={evidence}", notice()), R"(e={"countries":["DE","FR","NG","VN"]})");
}

TEST(Template, AttributePlaceholderTakesTheLastValueOrNothing) {
  EXPECT_EQ(expandTemplate("{attr:helo_name} {attr:sender}", notice()), "second a@b");
  EXPECT_EQ(expandTemplate("[{attr:missing}]", notice()), "[]");
}

TEST(Template, UnknownPlaceholdersAndStrayBracesStayAsWritten) {
  EXPECT_EQ(expandTemplate("{nope} {ACCOUNT} {} {account", notice()),
            "{nope} {ACCOUNT} {} {account");
  EXPECT_EQ(expandTemplate("}{{account}}", notice()), "}{alice@example.org}");
  EXPECT_EQ(expandTemplate("", notice()), "");
  EXPECT_EQ(expandTemplate("no placeholders", notice()), "no placeholders");
}

TEST(Template, ValuesAreInsertedOnceNotExpandedAgain) {
  Notice n = notice();
  n.account = "{reason}{attr:sender}";
  EXPECT_EQ(expandTemplate("{account}", n), "{reason}{attr:sender}");
}

TEST(Template, TimeIsRfc3339Utc) {
  EXPECT_EQ(formatRfc3339(fromUnixMs(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(formatRfc3339(fromUnixMs(1795417937999)), "2026-11-23T07:12:17Z");
}

}  // namespace
}  // namespace saslguard::notify
