// options_test.cpp — the option table is complete and consistent: one entry per member of
// Settings, names derived by the documented rules, defaults taken from the structs, secrets
// masked wherever a value is shown; and the single-value checks behind it.
#include <gtest/gtest.h>

#include <boost/pfr.hpp>
#include <set>
#include <utility>

#include "config/checks.hpp"
#include "config/options.hpp"

namespace saslguard::config {
namespace {

// --- completeness ----------------------------------------------------------------------------

template <class T>
void perturb(T& field) {
  if constexpr (std::is_same_v<T, bool>) {
    field = !field;
  } else if constexpr (std::is_integral_v<T>) {
    field += 1;
  } else if constexpr (std::is_same_v<T, std::string>) {
    field += "x";
  } else {
    field.push_back("x");
  }
}

Settings freshSettings() {
  return Settings{};
}

// `tie` returns a tuple of references to every field of one settings struct. Each field is
// changed in turn and exactly one option of `section` must notice: no member without an
// option, none with two.
template <std::size_t I, class Tie>
void expectOneOptionForField(Tie tie, const std::string& section) {
  auto settings = freshSettings();
  perturb(std::get<I>(tie(settings)));
  const auto changed = changedOptions(freshSettings(), settings);
  ASSERT_EQ(changed.size(), 1u) << section << " field #" << I;
  EXPECT_EQ(changed[0]->section, section) << section << " field #" << I;
}

template <class Tie, std::size_t... I>
void expectOneOptionForFields(Tie tie, const std::string& section, std::index_sequence<I...>) {
  (expectOneOptionForField<I>(tie, section), ...);
}

std::size_t optionsIn(const std::string& section) {
  std::size_t count = 0;
  for (const auto& option : options()) count += option.section == section ? 1 : 0;
  return count;
}

template <class Tie>
void expectOneOptionPerField(Tie tie, const std::string& section, std::size_t ownFields = 0) {
  constexpr auto kFields = std::tuple_size_v<decltype(tie(std::declval<Settings&>()))>;
  EXPECT_EQ(optionsIn(section), kFields + ownFields) << section;
  expectOneOptionForFields(tie, section, std::make_index_sequence<kFields>{});
}

// Boost.PFR enumerates the fields of a struct. g++ 12 crashes (internal compiler error in
// check_noexcept_r) when PFR counts ServerSettings and therefore Settings, so those two are
// spelled out with structured bindings, which fail to compile when a member is added (LdapSettings
// too).
TEST(OptionTable, EveryMemberOfSettingsHasExactlyOneOption) {
  {
    Settings s;
    auto& [server, protocol, log, identity, ldap, lists, replies, registry, state, redis, postfix,
           decisions, eventlog, dns, notify, admin, detectors, source_path] = s;
    (void)server, (void)protocol, (void)log, (void)identity, (void)ldap, (void)lists, (void)replies;
    (void)registry, (void)state, (void)redis, (void)postfix, (void)decisions, (void)eventlog,
        (void)dns, (void)notify;
    (void)admin, (void)detectors, (void)source_path;
    std::set<std::string> tables;  // one member per top-level table, plus source_path
    for (const auto& section : sections()) tables.insert(section.substr(0, section.find('.')));
    EXPECT_EQ(tables.size(), 17u);
    EXPECT_EQ(boost::pfr::tuple_size_v<DetectorsSettings>, 4u);  // one member per detector
  }
  expectOneOptionPerField(
      [](Settings& s) {
        auto& [a, b, c, d, e, f, g, h, i, j, k] = s.server;
        return std::tie(a, b, c, d, e, f, g, h, i, j, k);
      },
      "server");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.protocol); },
                          "protocol");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.log); }, "log");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.identity); },
                          "identity");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.lists); }, "lists");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.replies); },
                          "replies");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.registry); },
                          "registry");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.state); }, "state");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.redis); }, "redis");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.postfix); },
                          "postfix");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.decisions); },
                          "decisions");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.eventlog); },
                          "eventlog");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.dns); }, "dns");
  expectOneOptionPerField(
      [](Settings& s) {  // PFR crashes g++ 12 here too (the vector with a default)
        auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18,
               f19, f20, f21] = s.ldap;
        return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16,
                        f17, f18, f19, f20, f21);
      },
      "ldap");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.notify); },
                          "notify");
  expectOneOptionPerField([](Settings& s) { return boost::pfr::structure_tie(s.admin); }, "admin");
  // Neither PFR nor structured bindings see through a base class: the shared switches are
  // checked field by field, the denylist's own members (accounts, senders, networks) counted.
  expectOneOptionPerField(
      [](Settings& s) {
        return boost::pfr::structure_tie(static_cast<DetectorSwitches&>(s.detectors.denylist));
      },
      "detectors.denylist", 3);
  expectOneOptionPerField(
      [](Settings& s) {
        return boost::pfr::structure_tie(static_cast<DetectorSwitches&>(s.detectors.quota));
      },
      "detectors.quota", 18);
  expectOneOptionPerField(
      [](Settings& s) {
        return boost::pfr::structure_tie(static_cast<DetectorSwitches&>(s.detectors.reputation));
      },
      "detectors.reputation", 7);
  expectOneOptionPerField(
      [](Settings& s) {
        return boost::pfr::structure_tie(static_cast<DetectorSwitches&>(s.detectors.geo));
      },
      "detectors.geo", 15);
}

TEST(OptionTable, EachOptionWritesOnlyItsOwnMember) {
  for (const auto& option : options()) {
    Settings settings;
    auto value = option.read(settings);
    std::visit([](auto& v) { perturb(v); }, value);
    option.write(settings, value);
    const auto changed = changedOptions(Settings{}, settings);
    ASSERT_EQ(changed.size(), 1u) << option.name();
    EXPECT_EQ(changed[0], &option);
  }
}

// --- naming and documentation ----------------------------------------------------------------

TEST(OptionTable, NamesFollowTheSectionAndKey) {
  const auto* option = findOption("detectors.denylist.reply_text");
  ASSERT_NE(option, nullptr);
  EXPECT_EQ(option->envName(), "SASLGUARD_DETECTORS_DENYLIST_REPLY_TEXT");
  EXPECT_EQ(option->flagName(), "detectors-denylist-reply-text");
  EXPECT_EQ(findOptionByEnv("SASLGUARD_DETECTORS_DENYLIST_REPLY_TEXT"), option);
  EXPECT_EQ(findOption("server.listen")->flag_aliases, std::vector<std::string>{"listen"});
  EXPECT_EQ(findOption("state.dir")->flagName(), "state-dir");
  EXPECT_EQ(findOption("server.nonsense"), nullptr);
}

TEST(OptionTable, EveryOptionIsDocumented) {
  for (const auto& option : options()) {
    SCOPED_TRACE(option.name());
    EXPECT_FALSE(option.help.empty());
    EXPECT_EQ(option.help.find('\n'), std::string::npos);
    EXPECT_NE(option.help.back(), '.');  // the generators add the full stop
    EXPECT_EQ(option.since, "0.1");
    EXPECT_EQ(option.secret, option.name() == "detectors.reputation.api_key" ||
                                 option.name() == "admin.basic_password");  // see Secrets
  }
}

TEST(OptionTable, DefaultsComeFromTheSettingsStructs) {
  EXPECT_EQ(formatDefault(*findOption("server.max_connections")), "4096");
  EXPECT_EQ(formatDefault(*findOption("server.listen")), "[\"127.0.0.1:10040\"]");
  EXPECT_EQ(formatDefault(*findOption("identity.strip_domain")), "false");
  EXPECT_EQ(formatDefault(*findOption("lists.allow_accounts")), "[]");
  EXPECT_EQ(formatDefault(*findOption("state.max_accounts")), "2000000");
}

TEST(OptionTable, TypesComeFromTheMembers) {
  EXPECT_EQ(findOption("server.listen")->typeText(), "list of strings");
  EXPECT_EQ(findOption("server.threads")->typeText(), "integer 0..1024");
  EXPECT_EQ(findOption("identity.strip_domain")->typeText(), "boolean");
  EXPECT_EQ(findOption("log.sink")->typeText(), "one of: stderr, syslog, json");
  EXPECT_EQ(findOption("server.user")->typeText(), "string");
}

TEST(OptionTable, ActionsAreTheFourPostfixAnswers) {
  for (const char* name :
       {"protocol.malformed_action", "registry.action", "detectors.denylist.action"}) {
    EXPECT_EQ(findOption(name)->allowed,
              (std::vector<std::string>{"REJECT", "DEFER", "HOLD", "DUNNO"}))
        << name;
  }
  EXPECT_EQ(checkString(*findOption("registry.action"), "dunno").value(), "DUNNO");
}

// --- secrets ---------------------------------------------------------------------------------

// No option is secret yet; a copy of real entries flagged secret stands in for future ones
// (passwords for Redis, LDAP, SQL).
Option secretCopyOf(const char* name) {
  Option option = *findOption(name);
  option.secret = true;
  return option;
}

TEST(Secrets, AreMaskedWhereverAValueIsShown) {
  const auto text = secretCopyOf("replies.reject_text");
  Settings settings;
  settings.replies.reject_text = "hunter2";
  EXPECT_EQ(formatValue(text, settings), "\"********\"");
  EXPECT_EQ(formatDefault(text), "\"********\"");
  EXPECT_EQ(shownInError(text, "hunter2"), "********");
  EXPECT_EQ(checkString(text, "hunter2\n").error().message,
            "expected one line of text without control characters, got ********");

  const auto number = secretCopyOf("server.threads");
  EXPECT_EQ(parseText(number, "hunter2").error(),
            std::vector<std::string>{"expected an integer from 0 to 1024, got ********"});
  EXPECT_EQ(checkInt(number, 99999).error().message,
            "expected an integer from 0 to 1024, got ********");

  const auto choice = secretCopyOf("log.level");
  EXPECT_EQ(checkString(choice, "hunter2").error().message,
            "expected one of trace, debug, info, warn, error, off, got ********");
}

// --- value syntax ----------------------------------------------------------------------------

TEST(ParseText, ConvertsToTheOptionType) {
  EXPECT_EQ(parseText(*findOption("server.threads"), " 12 ").value(), Value(std::int64_t{12}));
  EXPECT_EQ(parseText(*findOption("identity.strip_domain"), "On").value(), Value(true));
  EXPECT_EQ(parseText(*findOption("log.sink"), "JSON").value(), Value(std::string("json")));
  EXPECT_EQ(parseText(*findOption("lists.allow_accounts"), "a, b").value(),
            Value(std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parseText(*findOption("state.max_accounts"), "99999999999").error(),
            std::vector<std::string>{"expected an integer from 1 to 1000000000, got 99999999999"});
  EXPECT_FALSE(parseText(*findOption("server.threads"), "12abc"));
  EXPECT_FALSE(parseText(*findOption("server.threads"), ""));
  EXPECT_FALSE(parseText(*findOption("server.threads"), "99999999999999999999999"));
}

TEST(ParseText, FormatValueWritesTomlLiterals) {
  const auto& option = *findOption("lists.allow_accounts");
  EXPECT_EQ(formatValue(option, Value(std::vector<std::string>{"a\"b", "c\\d", "é"})),
            R"(["a\"b", "c\\d", "é"])");
}

TEST(Suggestions, OfferTheClosestNameForLikelyTypos) {
  const std::vector<std::string> keys{"max_connections", "max_line_bytes", "threads"};
  EXPECT_EQ(closestMatch("max_conections", keys), "max_connections");
  EXPECT_EQ(closestMatch("THREADS", keys), "threads");
  EXPECT_EQ(closestMatch("thraeds", keys), "threads");
  EXPECT_EQ(closestMatch("max_line_btyes", keys), "max_line_bytes");  // swapped letters
  EXPECT_EQ(closestMatch("colour", keys), "");
  EXPECT_EQ(closestMatch("foo", {"log"}), "");
}

// --- single-value checks ---------------------------------------------------------------------

TEST(ListenAddress, AcceptsTcpAndUnixForms) {
  auto v4 = parseListenAddress("127.0.0.1:10040").value();
  EXPECT_EQ(v4.kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 10040);
  auto v6 = parseListenAddress("[2001:db8::1]:0").value();
  EXPECT_EQ(v6.host, "2001:db8::1");
  EXPECT_EQ(v6.port, 0);
  EXPECT_EQ(parseListenAddress("localhost:25").value().host, "localhost");
  auto local = parseListenAddress("unix:/var/spool/postfix/private/saslguard").value();
  EXPECT_EQ(local.kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(local.path, "/var/spool/postfix/private/saslguard");
}

TEST(ListenAddress, RejectsWhatCannotBeBound) {
  const std::pair<const char*, const char*> cases[] = {
      {"10040", "expected HOST:PORT, [IPv6]:PORT or unix:/absolute/path"},
      {"::1:10040", "IPv6 addresses need brackets, as in [::1]:10040"},
      {"[::1]:65536", "expected a port from 0 to 65535 after the last ':'"},
      {"127.0.0.1:", "expected a port from 0 to 65535 after the last ':'"},
      {"[127.0.0.1]:1", "expected an IPv6 address between the brackets"},
      {"[::1:1", "expected HOST:PORT, [IPv6]:PORT or unix:/absolute/path"},
      {"unix:relative", "a unix socket path must be absolute"},
      {"*:25", "expected an IP address or host name before the port"},
      {":25", "expected HOST:PORT, [IPv6]:PORT or unix:/absolute/path"},
  };
  for (const auto& [text, reason] : cases) {
    EXPECT_EQ(parseListenAddress(text).error().message, reason) << text;
  }
}

TEST(SocketMode, IsOctalUpTo0777) {
  EXPECT_EQ(parseSocketMode("0660").value(), 0660u);
  EXPECT_EQ(parseSocketMode("600").value(), 0600u);
  EXPECT_EQ(parseSocketMode("0777").value(), 0777u);
  for (const char* bad : {"", "0999", "1777", "rw-rw----", "00660", "0x1b6"}) {
    EXPECT_FALSE(parseSocketMode(bad)) << bad;
  }
}

TEST(Checks, NetworksPathsAndReplyTexts) {
  EXPECT_TRUE(checkNetwork("192.0.2.0/24"));
  EXPECT_TRUE(checkNetwork("2001:db8::/32"));
  EXPECT_TRUE(checkNetwork("198.51.100.7"));
  EXPECT_FALSE(checkNetwork("192.0.2.0/33"));
  EXPECT_FALSE(checkNetwork("example.org"));
  EXPECT_TRUE(checkAbsolutePath("/var/lib/saslguard"));
  EXPECT_FALSE(checkAbsolutePath("var/lib/saslguard"));
  EXPECT_TRUE(checkOneLine("5.7.1 Blocked; contact support"));
  EXPECT_TRUE(checkOneLine(""));
  EXPECT_FALSE(checkOneLine("a\r\nb"));
  EXPECT_FALSE(checkOneLine("tab\there"));
}

}  // namespace
}  // namespace saslguard::config
