// loader_test.cpp — how settings are assembled: defaults, the file, the environment and flags,
// their precedence (flag > environment > file > default), value syntax outside TOML, and how
// errors name their origin. Broken files have golden cases in cases/ (cases_test.cpp).
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "config/loader.hpp"
#include "config/options.hpp"
#include "config/test_files.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::config {
namespace {

using saslguard::testing::TempDir;
using testing::writeFile;

const std::string kCases = std::string(SASLGUARD_TEST_DIR) + "/config/cases";

LoadRequest fileRequest(const std::string& path) {
  LoadRequest request;
  request.config_path = path;
  request.config_path_given = true;
  return request;
}

Settings loadOrFail(const LoadRequest& request) {
  auto settings = load(request);
  if (!settings) ADD_FAILURE() << settings.error().text();
  return settings.value_or(Settings{});
}

std::string errorsOf(const LoadRequest& request) {
  auto settings = load(request);
  return settings ? "(no error)" : settings.error().text();
}

// --- file ------------------------------------------------------------------------------------

TEST(Load, RunsOnBuiltInDefaultsWhenTheDefaultFileIsMissing) {
  TempDir dir;
  LoadRequest request;
  request.config_path = (dir / "saslguard.toml").string();  // as if it were the default path
  const auto settings = loadOrFail(request);
  EXPECT_TRUE(changedOptions(Settings{}, settings).empty());
  EXPECT_EQ(settings.source_path, "");
  EXPECT_EQ(settings.server.listen, std::vector<std::string>{"127.0.0.1:10040"});
}

TEST(Load, AMissingFileNamedExplicitlyIsAnError) {
  TempDir dir;
  const auto path = (dir / "absent.toml").string();
  EXPECT_EQ(errorsOf(fileRequest(path)),
            path + ": cannot read the configuration file: No such file or directory");
}

TEST(Load, SaslguardConfigVariableNamesTheFileAndMakesItRequired) {
  TempDir dir;
  const auto path = (dir / "other.toml").string();
  LoadRequest request;
  request.config_path = (dir / "default.toml").string();
  request.environment = {"SASLGUARD_CONFIG=" + path};
  EXPECT_EQ(errorsOf(request),
            path + ": cannot read the configuration file: No such file or directory");

  writeFile(path, "[server]\nthreads = 3\n");
  const auto settings = loadOrFail(request);
  EXPECT_EQ(settings.server.threads, 3);
  EXPECT_EQ(settings.source_path, path);
}

TEST(Load, ConfigFlagWinsOverTheVariable) {
  TempDir dir;
  writeFile(dir / "flag.toml", "[server]\nthreads = 5\n");
  auto request = fileRequest((dir / "flag.toml").string());
  request.environment = {"SASLGUARD_CONFIG=" + (dir / "absent.toml").string()};
  EXPECT_EQ(loadOrFail(request).server.threads, 5);
}

TEST(Load, ReadsAFullFile) {
  const auto settings = loadOrFail(fileRequest(kCases + "/full.toml"));
  EXPECT_EQ(settings.source_path, kCases + "/full.toml");
  EXPECT_EQ(settings.server.listen.size(), 4u);
  EXPECT_EQ(settings.server.listen[3], "unix:/run/saslguard/policy");
  EXPECT_EQ(settings.server.max_connections, 100);
  EXPECT_EQ(settings.server.control_socket, "");
  EXPECT_EQ(settings.protocol.malformed_action, "DEFER");
  EXPECT_EQ(settings.log.level, "debug");
  EXPECT_TRUE(settings.identity.strip_domain);
  EXPECT_EQ(settings.replies.reject_text, "5.7.1 Blocked \"now\" \\ café");
  EXPECT_EQ(settings.registry.action, "HOLD");
  EXPECT_EQ(settings.state.max_accounts, 1000000000);
  EXPECT_FALSE(settings.detectors.denylist.enabled);
  EXPECT_TRUE(settings.detectors.denylist.shadow);
  EXPECT_EQ(settings.detectors.denylist.senders, std::vector<std::string>{"bounce@example.net"});
  EXPECT_EQ(settings.detectors.quota.windows, (std::vector<std::string>{"24h:3000", "1h:500"}));
  EXPECT_EQ(settings.detectors.quota.time_zone, "Europe/Paris");
}

TEST(Load, FullCaseSetsEveryOptionThatHasAnAlternative) {
  // Keeps full.toml (and so the round trip in generated_test.cpp) complete as options are added.
  const auto settings = loadOrFail(fileRequest(kCases + "/full.toml"));
  std::vector<std::string> unchanged;
  for (const auto& option : options()) {
    if (option.read(settings) == option.read(Settings{})) unchanged.push_back(option.name());
  }
  EXPECT_EQ(unchanged, std::vector<std::string>{"state.backend"});
}

// --- precedence ------------------------------------------------------------------------------

class Precedence : public ::testing::Test {
 protected:
  void SetUp() override {
    writeFile(dir_ / "saslguard.toml",
              "[server]\nmax_connections = 100\nlisten = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n");
  }
  LoadRequest request(bool file, bool env, bool flag) const {
    LoadRequest r;
    r.config_path = (dir_ / (file ? "saslguard.toml" : "absent.toml")).string();
    if (env) {
      r.environment = {"SASLGUARD_SERVER_MAX_CONNECTIONS=200",
                       "SASLGUARD_SERVER_LISTEN=127.0.0.1:3"};
    }
    if (flag) {
      r.flags.values = {{"server.max_connections", "300"}, {"server.listen", "127.0.0.1:4"}};
    }
    return r;
  }
  TempDir dir_;
};

TEST_F(Precedence, FlagBeatsEnvironmentBeatsFileBeatsDefaultForAScalar) {
  EXPECT_EQ(loadOrFail(request(true, true, true)).server.max_connections, 300);
  EXPECT_EQ(loadOrFail(request(true, true, false)).server.max_connections, 200);
  EXPECT_EQ(loadOrFail(request(true, false, false)).server.max_connections, 100);
  EXPECT_EQ(loadOrFail(request(false, false, false)).server.max_connections, 4096);
  EXPECT_EQ(loadOrFail(request(true, false, true)).server.max_connections, 300);
  EXPECT_EQ(loadOrFail(request(false, true, false)).server.max_connections, 200);
}

TEST_F(Precedence, AStrongerSourceReplacesAListWhole) {
  using List = std::vector<std::string>;
  EXPECT_EQ(loadOrFail(request(true, true, true)).server.listen, List{"127.0.0.1:4"});
  EXPECT_EQ(loadOrFail(request(true, true, false)).server.listen, List{"127.0.0.1:3"});
  EXPECT_EQ(loadOrFail(request(true, false, false)).server.listen,
            (List{"127.0.0.1:1", "127.0.0.1:2"}));
  EXPECT_EQ(loadOrFail(request(false, false, false)).server.listen, List{"127.0.0.1:10040"});
}

TEST_F(Precedence, RepeatedListFlagsAppendToEachOther) {
  auto r = request(true, true, false);
  r.flags.values = {{"server.listen", "127.0.0.1:4"}, {"server.listen", "127.0.0.1:5,[::1]:6"}};
  EXPECT_EQ(loadOrFail(r).server.listen,
            (std::vector<std::string>{"127.0.0.1:4", "127.0.0.1:5", "[::1]:6"}));
}

TEST_F(Precedence, TheLastOfRepeatedScalarFlagsWins) {
  auto r = request(true, true, false);
  r.flags.values = {{"server.max_connections", "7"}, {"server.max_connections", "8"}};
  EXPECT_EQ(loadOrFail(r).server.max_connections, 8);
}

// --- environment -----------------------------------------------------------------------------

Settings withEnvironment(std::vector<std::string> environment) {
  LoadRequest request;
  request.config_path = "/nonexistent/saslguard.toml";
  request.environment = std::move(environment);
  return loadOrFail(request);
}

TEST(Environment, BooleansAcceptTheUsualSpellingsInAnyCase) {
  for (const char* yes : {"true", "yes", "on", "1", "TRUE", "Yes", " on "}) {
    SCOPED_TRACE(yes);
    EXPECT_TRUE(withEnvironment({std::string("SASLGUARD_IDENTITY_STRIP_DOMAIN=") + yes})
                    .identity.strip_domain);
  }
  for (const char* no : {"false", "no", "off", "0", "False", "NO"}) {
    SCOPED_TRACE(no);
    EXPECT_FALSE(withEnvironment({std::string("SASLGUARD_DETECTORS_DENYLIST_ENABLED=") + no})
                     .detectors.denylist.enabled);
  }
}

TEST(Environment, ListsAreCommaSeparatedAndTrimmed) {
  const auto settings =
      withEnvironment({"SASLGUARD_DETECTORS_DENYLIST_ACCOUNTS= a@example.org,b@example.org ,,c"});
  EXPECT_EQ(settings.detectors.denylist.accounts,
            (std::vector<std::string>{"a@example.org", "b@example.org", "c"}));
}

TEST(Environment, AnEmptyListVariableEmptiesTheList) {
  EXPECT_TRUE(withEnvironment({"SASLGUARD_SERVER_LISTEN="}).server.listen.empty());
}

TEST(Environment, StringsAreTakenAsTheyAre) {
  const auto settings = withEnvironment({"SASLGUARD_REPLIES_HOLD_TEXT=Held, for review = ok"});
  EXPECT_EQ(settings.replies.hold_text, "Held, for review = ok");
}

TEST(Environment, OtherVariablesAreIgnored) {
  const auto settings = withEnvironment(
      {"PATH=/usr/bin", "SASLGUARD_REGENERATE_DOCS=1", "SASLGUARD_NOT_A_SECTION=x", "NOEQUALS"});
  EXPECT_TRUE(changedOptions(Settings{}, settings).empty());
}

TEST(Environment, ErrorsNameTheVariable) {
  LoadRequest request;
  request.config_path = "/nonexistent/saslguard.toml";
  request.environment = {"SASLGUARD_SERVER_MAX_CONNECTIONS=abc", "SASLGUARD_LOG_LEVEL=loud",
                         "SASLGUARD_LISTS_ALLOW_NETWORKS=10.0.0.0/8,10.0.0.300,::1/200",
                         "SASLGUARD_IDENTITY_STRIP_DOMAIN=maybe"};
  EXPECT_EQ(errorsOf(request),
            "env SASLGUARD_SERVER_MAX_CONNECTIONS: server.max_connections: expected an integer "
            "from 1 to 1000000, got \"abc\"\n"
            "env SASLGUARD_LOG_LEVEL: log.level: expected one of trace, debug, info, warn, error, "
            "off, got \"loud\"\n"
            "env SASLGUARD_LISTS_ALLOW_NETWORKS: lists.allow_networks: expected an IP address or "
            "a CIDR network such as 192.0.2.0/24 or 2001:db8::/32, got \"10.0.0.300\"\n"
            "env SASLGUARD_LISTS_ALLOW_NETWORKS: lists.allow_networks: expected a prefix length "
            "up to 32 (IPv4) or 128 (IPv6) after '/', got \"::1/200\"\n"
            "env SASLGUARD_IDENTITY_STRIP_DOMAIN: identity.strip_domain: expected true or false "
            "(or yes/no, on/off, 1/0), got \"maybe\"");
}

TEST(Environment, AMisspeltOptionVariableIsAnError) {
  LoadRequest request;
  request.config_path = "/nonexistent/saslguard.toml";
  request.environment = {"SASLGUARD_SERVER_MAX_CONECTIONS=10",
                         "SASLGUARD_DETECTORS_NOPE_ENABLED=1"};
  EXPECT_EQ(errorsOf(request),
            "env SASLGUARD_SERVER_MAX_CONECTIONS: unknown option (did you mean "
            "SASLGUARD_SERVER_MAX_CONNECTIONS?)\n"
            "env SASLGUARD_DETECTORS_NOPE_ENABLED: unknown option");
}

// --- flags -----------------------------------------------------------------------------------

// Parses a command line through CLI11 the way the saslguard binary does.
LoadRequest parseCommandLine(std::vector<std::string> args) {
  CLI::App app("saslguard");
  LoadRequest request;
  addFlags(app, request);
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector form back to front
  app.parse(args);
  return request;
}

TEST(Flags, EveryOptionHasAFlagNamedAfterItsSectionAndKey) {
  const auto request = parseCommandLine(
      {"--server-max-connections", "300", "--detectors-denylist-action=hold", "--listen",
       "127.0.0.1:1", "--server-listen", "127.0.0.1:2", "--listen", "[::1]:3", "--state-dir",
       "/srv/saslguard", "--identity-strip-domain", "yes"});
  EXPECT_FALSE(request.config_path_given);
  const auto settings = loadOrFail(request);
  EXPECT_EQ(settings.server.max_connections, 300);
  EXPECT_EQ(settings.detectors.denylist.action, "HOLD");
  EXPECT_EQ(settings.server.listen,
            (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2", "[::1]:3"}));
  EXPECT_EQ(settings.state.dir, "/srv/saslguard");
  EXPECT_TRUE(settings.identity.strip_domain);
}

TEST(Flags, ConfigNamesTheFileAndMakesItRequired) {
  for (const char* flag : {"--config", "-c"}) {
    const auto request = parseCommandLine({flag, "/srv/saslguard.toml"});
    EXPECT_EQ(request.config_path, "/srv/saslguard.toml");
    EXPECT_TRUE(request.config_path_given);
  }
  EXPECT_EQ(parseCommandLine({}).config_path, "/etc/saslguard/saslguard.toml");
}

TEST(Flags, CliElevenRejectsFlagsThatAreNoOption) {
  EXPECT_THROW(parseCommandLine({"--server-max-conections", "3"}), CLI::ParseError);
}

TEST(Flags, ErrorsNameTheFlag) {
  LoadRequest request =
      parseCommandLine({"--server-threads", "-1", "--listen", "localhost", "--log-sink", "file"});
  request.config_path = "/nonexistent/saslguard.toml";
  request.flags.values.emplace_back("server.max_conections", "3");  // built by hand, not CLI11
  EXPECT_EQ(errorsOf(request),
            "flag --server-listen: server.listen: expected HOST:PORT, [IPv6]:PORT or "
            "unix:/absolute/path, got \"localhost\"\n"
            "flag --server-threads: server.threads: expected an integer from 0 to 1024, got -1\n"
            "flag --log-sink: log.sink: expected one of stderr, syslog, json, got \"file\"\n"
            "flag --server-max-conections: server.max_conections: unknown option (did you mean "
            "server.max_connections?)");
}

// --- errors ----------------------------------------------------------------------------------

TEST(Errors, AllAreReportedFileFirstByLineThenEnvironmentThenFlags) {
  TempDir dir;
  const auto path = (dir / "saslguard.toml").string();
  writeFile(path, "[server]\nthreads = -2\n\n[log]\nlevel = \"loud\"\n");
  auto request = fileRequest(path);
  request.environment = {"SASLGUARD_SERVER_IDLE_TIMEOUT_S=0"};
  request.flags.values = {{"protocol.max_attributes", "0"}};
  const auto settings = load(request);
  ASSERT_FALSE(settings);
  ASSERT_EQ(settings.error().errors.size(), 4u);
  const auto& first = settings.error().errors[0];
  EXPECT_EQ(first.where, path + ":2");
  EXPECT_EQ(first.key, "server.threads");
  EXPECT_EQ(first.reason, "expected an integer from 0 to 1024, got -2");
  EXPECT_EQ(settings.error().errors[1].where, path + ":5");
  EXPECT_EQ(settings.error().errors[2].where, "env SASLGUARD_SERVER_IDLE_TIMEOUT_S");
  EXPECT_EQ(settings.error().errors[3].where, "flag --protocol-max-attributes");
}

TEST(Errors, ACrossCheckNamesWhereTheValueCameFrom) {
  LoadRequest request;
  request.config_path = "/nonexistent/saslguard.toml";
  request.environment = {"SASLGUARD_PROTOCOL_MAX_REQUEST_BYTES=1000"};
  EXPECT_EQ(errorsOf(request),
            "env SASLGUARD_PROTOCOL_MAX_REQUEST_BYTES: protocol.max_request_bytes: expected at "
            "least protocol.max_line_bytes (16384), got 1000");
}

TEST(Errors, TextJoinsOneErrorPerLine) {
  ConfigErrors errors{{{"a.toml:1", "server.threads", "bad"}, {"env SASLGUARD_X", "", "worse"}}};
  EXPECT_EQ(errors.text(), "a.toml:1: server.threads: bad\nenv SASLGUARD_X: worse");
}

}  // namespace
}  // namespace saslguard::config
