// contrib_hook_test.cpp — contrib/report-compromised-account.sh run the way saslguard runs it,
// with a stand-in sendmail: hostile values stay data, cannot add header lines (sendmail -t takes
// recipients from the headers), and an unset TO fails loudly.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "metrics/metrics.hpp"
#include "notify/hook_runner.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::notify {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

std::uint64_t counter(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  return 0;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The contrib script with TO and SENDMAIL set as an operator would edit them.
std::string installScript(const TempDir& dir, const std::string& to) {
  auto text = readFile(std::filesystem::path(SASLGUARD_SOURCE_DIR) /
                       "contrib/report-compromised-account.sh");
  text = std::regex_replace(text, std::regex("\nTO=\"\""), "\nTO=\"" + to + "\"");
  text = std::regex_replace(text, std::regex("\nSENDMAIL=\"[^\"]*\""),
                            "\nSENDMAIL=\"" + (dir / "sendmail").string() + "\"");
  const auto script = dir / "report.sh";
  std::ofstream(script) << text;
  ::chmod(script.c_str(), 0755);
  std::ofstream(dir / "sendmail") << "#!/bin/sh\nprintf '%s\\n' \"$@\" > \""
                                  << (dir / "args").string() << "\"\ncat > \""
                                  << (dir / "mail").string() << "\"\n";
  ::chmod((dir / "sendmail").c_str(), 0755);
  return script.string();
}

void runOnce(const std::string& script, const Notice& notice) {
  auto runner = HookRunner::create({.command = {script}, .timeout = 20s});
  ASSERT_TRUE(runner) << runner.error().message;
  (*runner)->submit(notice);
  (*runner)->requestStop(std::chrono::steady_clock::now() + 20s);  // runs it, then returns
  (*runner)->join();
}

TEST(ContribHook, MailsTheOperatorWithoutLettingValuesAddHeaders) {
  TempDir dir;
  const auto script = installScript(dir, "ops@example.org");
  const auto pwned = (dir / "pwned").string();
  Notice notice;
  notice.account = "mallory@example.org\r\nBcc: victim@example.net";
  notice.detector = "reputation";
  notice.action = "REJECT";
  notice.reason = "listed\nTo: another@example.net";
  notice.evidence = "{\"a\":1}\n.\nBcc: body@example.net";
  notice.client_address = "192.0.2.10";
  notice.at = fromUnixMs(1795417937000);
  notice.attributes = {{"helo_name", "$(touch " + pwned + ")"},
                       {"sender", "`touch " + pwned + "`; touch " + pwned},
                       {"sasl_method", "PLAIN"},
                       {"client_name", "caf\xc3\xa9.example"}};
  const auto failed = counter("hooks_failed_total");
  runOnce(script, notice);
  EXPECT_EQ(counter("hooks_failed_total"), failed);

  EXPECT_EQ(readFile(dir / "args"), "-t\n-i\n");
  const auto mail = readFile(dir / "mail");
  const auto headers = mail.substr(0, mail.find("\n\n"));
  EXPECT_EQ(headers,
            "To: ops@example.org\n"
            "Subject: New compromised account: mallory@example.org  Bcc: victim@example.net\n"
            "Auto-Submitted: auto-generated\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit");
  EXPECT_NE(mail.find("Reason:         listed To: another@example.net\n"), std::string::npos);
  EXPECT_NE(mail.find("HELO name:      $(touch " + pwned + ")\n"), std::string::npos) << mail;
  EXPECT_NE(mail.find("Client name:    caf\xc3\xa9.example\n"), std::string::npos);
  EXPECT_NE(mail.find("Time:           2026-11-23T07:12:17Z\n"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(pwned));
}

TEST(ContribHook, FailsLoudlyWithoutTo) {
  TempDir dir;
  const auto script = installScript(dir, "");
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  const auto failed = counter("hooks_failed_total");
  Notice notice;
  notice.account = "alice@example.org";
  runOnce(script, notice);
  spdlog::set_default_logger(previous);
  EXPECT_EQ(counter("hooks_failed_total"), failed + 1);
  EXPECT_NE(captured.str().find("TO is not set"), std::string::npos) << captured.str();
  EXPECT_FALSE(std::filesystem::exists(dir / "mail"));
}

}  // namespace
}  // namespace saslguard::notify
