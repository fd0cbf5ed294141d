// admin_api_readme_test.cpp — black box: the curl examples of geoip-policyd's README
// (cases/geoip_policyd_readme_curl.txt, verbatim) run against saslguard with the real curl
// binary and get the statuses and bodies the README documents.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <memory>

#include "support/daemon_process.hpp"
#include "support/mmdb.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

namespace json = boost::json;

// The README's "default custom.json".
constexpr std::string_view kReadmeCustomJson = R"({"data":[
{"comment":"Allow only two countries and a maximum of 5 IP addresses","sender":"christian@roessner.email","ips":5,"countries":2},
{"comment":"Allow at least 4 countries and go with the default IP address limit","sender":"test1@example.com","ips":0,"countries":4},
{"comment":"Go with the default country limit, but allow up to 30 IP addresses","sender":"test2@example.com","ips":30,"countries":0}]})";

void replaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// Runs one command line through /bin/sh (the README's lines are shell), returns its stdout.
std::string shell(const std::string& command) {
  std::unique_ptr<FILE, decltype(&pclose)> pipe(::popen(command.c_str(), "r"), pclose);
  std::string out;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe.get()) != nullptr) out += buffer;
  return out;
}

// A daemon with the geo detector, the README's custom settings and the admin API; `secured`:
// HTTPS with a fresh self-signed certificate and Basic testuser:testsecret.
struct Daemon {
  TempDir dir;
  std::unique_ptr<DaemonProcess> process;

  explicit Daemon(bool secured) {
    writeMmdb(dir / "GeoLite2-City.mmdb", defaultTestNetworks());
    std::ofstream(dir / "custom.json") << kReadmeCustomJson;
    std::ofstream config(dir / "saslguard.toml");
    config << "[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n";
    if (secured) {
      const auto made = std::system(
          ("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout " +
           (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string() + " 2>/dev/null")
              .c_str());
      EXPECT_EQ(made, 0);
      config << "basic_user = \"testuser\"\nbasic_password = \"testsecret\"\ntls_cert_file = \""
             << (dir / "cert.pem").string() << "\"\ntls_key_file = \"" << (dir / "key.pem").string()
             << "\"\n";
    }
    config << "\n[detectors.geo]\nenabled = true\ndatabase = \""
           << (dir / "GeoLite2-City.mmdb").string() << "\"\ncustom_settings_file = \""
           << (dir / "custom.json").string() << "\"\n";
    config.close();
    process = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", (dir / "saslguard.toml").string(), "--listen",
                                 "127.0.0.1:0", "--state-dir", (dir / "state").string()},
        dir / "daemon.log");
  }
};

TEST(GeoipPolicydReadme, TheCurlExamplesGetTheDocumentedResults) {
  Daemon plain(false);
  ASSERT_TRUE(plain.process->ready()) << plain.process->log();
  Daemon secured(true);
  ASSERT_TRUE(secured.process->ready()) << secured.process->log();

  std::ifstream cases(std::string(SASLGUARD_TEST_DIR) +
                      "/integration/cases/geoip_policyd_readme_curl.txt");
  ASSERT_TRUE(cases);
  int run = 0;
  for (std::string line; std::getline(cases, line);) {
    if (line.empty() || line[0] == '#') continue;
    SCOPED_TRACE(line);
    const auto expected_status = line.substr(0, 3);
    std::string command = line.substr(4);
    replaceAll(command, " | jq", "");
    replaceAll(command, "http://localhost:8080",
               "http://127.0.0.1:" + std::to_string(plain.process->adminPort()));
    replaceAll(command, "https://localhost:8443",
               "https://127.0.0.1:" + std::to_string(secured.process->adminPort()));
    const auto output = shell(command + " -s -w '\\n%{http_code}'");
    const auto newline = output.rfind('\n');
    ASSERT_NE(newline, std::string::npos) << output;
    const auto body = output.substr(0, newline);
    EXPECT_EQ(output.substr(newline + 1), expected_status) << body;
    ++run;

    // The documented bodies.
    if (command.find("/custom-settings") != std::string::npos) {
      auto entries = json::parse(body).as_array();
      ASSERT_EQ(entries.size(), 3u);
      EXPECT_EQ(entries[0].at("sender"), "christian@roessner.email");
      EXPECT_EQ(entries[0].at("ips"), 5);
      EXPECT_EQ(entries[0].at("countries"), 2);
      EXPECT_EQ(entries[1].at("comment"),
                "Allow at least 4 countries and go with the default IP address limit");
      EXPECT_EQ(entries[2].at("ips"), 30);
    } else if (command.find("/query") != std::string::npos) {
      auto answer = json::parse(body);
      EXPECT_EQ(answer.at("operation"), "query");
      EXPECT_EQ(answer.at("guid").as_string().size(), 27u);
      EXPECT_TRUE(answer.at("result").as_bool()) << "an allowed policy response";
      EXPECT_EQ(answer.at("object").at("current_client_ip"), "1.2.3.4");
    } else if (expected_status[0] == '2') {
      EXPECT_EQ(body, "") << "Response: No results";
    }
  }
  EXPECT_EQ(run, 21);
}

}  // namespace
}  // namespace saslguard::testing
