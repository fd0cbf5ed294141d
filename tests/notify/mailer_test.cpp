// mailer_test.cpp — the operator e-mail: the message as built (headers a hostile account name
// cannot extend, CRLF lines, encoded non-ASCII subjects) and as delivered to Postfix's smtp-sink,
// with retries while the server is down, giving up, refusing clear text, AUTH and a prompt stop.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <sstream>
#include <thread>

#include "metrics/metrics.hpp"
#include "notify/mailer.hpp"
#include "notify/notifier.hpp"
#include "support/smtp_sink.hpp"

namespace saslguard::notify {
namespace {

using namespace std::chrono_literals;
using testing::SmtpSink;

std::uint64_t counter(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

template <class Predicate>
bool waitUntil(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

Notice sampleNotice(std::string account = "alice@example.org") {
  Notice notice;
  notice.account = std::move(account);
  notice.detector = "reputation";
  notice.action = "REJECT";
  notice.reason = "client 192.0.2.10 listed in authbl.example";
  notice.evidence = R"({"zone":"authbl.example","answer":"127.0.0.2"})";
  notice.client_address = "192.0.2.10";
  notice.at = fromUnixMs(1795417937000);
  notice.attributes = {{"sasl_username", notice.account}, {"helo_name", "mx.example.net"}};
  return notice;
}

MailOptions mailOptions(const std::string& url) {
  MailOptions options;
  options.url = url;
  options.from = "saslguard@example.org";
  options.to = {"postmaster@example.org", "security@example.org"};
  options.timeout = 5s;
  options.first_retry = 100ms;
  options.max_retry = 400ms;
  return options;
}

Mailer::Ptr makeMailer(MailOptions options) {
  auto mailer = Mailer::create(std::move(options));
  EXPECT_TRUE(mailer) << (mailer ? "" : mailer.error().message);
  return mailer ? std::move(*mailer) : nullptr;
}

void stopNow(Mailer& mailer) {
  mailer.requestStop(std::chrono::steady_clock::now());
  mailer.join();
}

std::vector<std::string> lines(const std::string& text, const std::string& separator) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(separator, start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + separator.size();
  }
  return out;
}

#define REQUIRE_SMTP_SINK() \
  if (!SmtpSink::available()) GTEST_SKIP() << SmtpSink::kProgram << " missing (apt install postfix)"

// ---- the message as built ----

TEST(MailMessage, HasTheHeadersAndTheDefaultBody) {
  const auto message = buildMessage(mailOptions("smtp://127.0.0.1:25"), sampleNotice(),
                                    fromUnixMs(1795417937000), "<1.2.3@example.org>");
  const auto [headers, body] = [&] {
    const auto blank = message.find("\r\n\r\n");
    return std::pair(message.substr(0, blank), message.substr(blank + 4));
  }();
  const std::vector<std::string> expected_headers{
      "Date: Mon, 23 Nov 2026 07:12:17 +0000",
      "From: saslguard@example.org",
      "To: postmaster@example.org, security@example.org",
      "Subject: saslguard: alice@example.org marked compromised by reputation",
      "Message-ID: <1.2.3@example.org>",
      "Auto-Submitted: auto-generated",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit"};
  EXPECT_EQ(lines(headers, "\r\n"), expected_headers);
  EXPECT_NE(body.find("Account:        alice@example.org\r\n"), std::string::npos) << body;
  EXPECT_NE(body.find("Client address: 192.0.2.10\r\n"), std::string::npos);
  EXPECT_NE(body.find("Time:           2026-11-23T07:12:17Z\r\n"), std::string::npos);
  EXPECT_NE(body.find(R"({"zone":"authbl.example","answer":"127.0.0.2"})"), std::string::npos);
}

TEST(MailMessage, AccountCannotAddHeaderLines) {
  MailOptions options = mailOptions("smtp://127.0.0.1:25");
  options.subject_template = "{account} / {attr:helo_name}";
  Notice notice = sampleNotice("mallory@example.org\r\nBcc: victim@example.net");
  notice.attributes = {{"helo_name", "x\nX-Injected: yes\r"}};
  const auto message = buildMessage(options, notice, Clock::now(), "<id@example.org>");
  const auto headers = message.substr(0, message.find("\r\n\r\n"));
  for (const auto& line : lines(headers, "\r\n")) {
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_NE(line.rfind("Bcc:", 0), 0u) << line;
    EXPECT_NE(line.rfind("X-Injected:", 0), 0u) << line;
  }
  EXPECT_NE(headers.find("Subject: mallory@example.org  Bcc: victim@example.net / x X-Injected: "
                         "yes \r\n"),
            std::string::npos)
      << headers;
}

TEST(MailMessage, BodyLinesEndInCrlfAndStayUnderTheLimit) {
  MailOptions options = mailOptions("smtp://127.0.0.1:25");
  options.body_template = "unix\nmac\rdos\r\n.\n{evidence}";
  Notice notice = sampleNotice();
  notice.evidence = std::string(3000, 'e');
  const auto message = buildMessage(options, notice, Clock::now(), "<id@example.org>");
  const auto body = message.substr(message.find("\r\n\r\n") + 4);
  EXPECT_EQ(body.rfind("unix\r\nmac\r\ndos\r\n.\r\n", 0), 0u) << body.substr(0, 40);
  ASSERT_GE(body.size(), 2u);
  EXPECT_EQ(body.substr(body.size() - 2), "\r\n");
  for (const auto& line : lines(body.substr(0, body.size() - 2), "\r\n")) {
    EXPECT_LE(line.size(), 998u);
    EXPECT_EQ(line.find_first_of("\r\n"), std::string::npos);
  }
  EXPECT_EQ(std::count(body.begin(), body.end(), 'e'), 3000);  // broken, not cut
}

TEST(MailMessage, NonAsciiSubjectIsEncoded) {
  EXPECT_EQ(headerText("plain"), "plain");
  EXPECT_EQ(headerText("caf\xc3\xa9"), "=?UTF-8?B?Y2Fmw6k=?=");
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "\xc3\xa9";  // 80 bytes, 40 characters
  const auto encoded = headerText(long_text);
  for (const auto& word : lines(encoded, "\r\n ")) {
    EXPECT_LE(word.size(), 75u);
    EXPECT_EQ(word.rfind("=?UTF-8?B?", 0), 0u);
  }
  EXPECT_EQ(lines(encoded, "\r\n ").size(), 2u);
}

TEST(MailMessage, DateIsRfc5322) {
  EXPECT_EQ(formatRfc5322(fromUnixMs(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_TRUE(std::regex_match(
      formatRfc5322(Clock::now()),
      std::regex(R"([A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000)")));
}

TEST(MailMessage, EnvelopeAddressDropsTheDisplayName) {
  EXPECT_EQ(envelopeAddress("Ops Team <ops@example.org>"), "ops@example.org");
  EXPECT_EQ(envelopeAddress("<ops@example.org>"), "ops@example.org");
  EXPECT_EQ(envelopeAddress(" ops@example.org "), "ops@example.org");
}

TEST(MailerCreate, NamesTheBadField) {
  auto error = [](MailOptions options) {
    auto result = Mailer::create(std::move(options));
    return result ? std::string("(created)") : result.error().message;
  };
  auto options = mailOptions("http://example.org/");
  EXPECT_NE(error(options).find("mail url"), std::string::npos);
  options = mailOptions("smtp://user:secret@relay.example.org");
  options.from.clear();
  EXPECT_NE(error(options).find("mail from"), std::string::npos);
  EXPECT_EQ(error(options).find("secret"), std::string::npos);
  options = mailOptions("smtps://relay.example.org");
  options.to.clear();
  EXPECT_NE(error(options).find("mail to"), std::string::npos);
  options = mailOptions("smtp://relay.example.org");
  options.to = {"a@example.org\r\nBcc: b@example.org"};
  EXPECT_NE(error(options).find("mail to"), std::string::npos);
  options = mailOptions("smtp://relay.example.org");
  options.max_attempts = 0;
  EXPECT_NE(error(options).find("max_attempts"), std::string::npos);

  MailOptions no_from;
  no_from.url = "smtp://relay.example.org";
  no_from.to = {"a@b"};
  auto notifier = Notifier::create({}, no_from);
  ASSERT_FALSE(notifier);
  EXPECT_NE(notifier.error().message.find("mail from"), std::string::npos);
}

// ---- delivery ----

TEST(Mailer, DeliversTheNoticeToEveryRecipient) {
  REQUIRE_SMTP_SINK();
  SmtpSink sink;
  ASSERT_TRUE(sink.running()) << sink.log();
  auto options = mailOptions(sink.url());
  options.body_template = "Account {account}\n.\n..two dots\n{evidence}\n";
  options.from = "saslguard <saslguard@example.org>";
  options.to = {"Postmaster <postmaster@example.org>", "security@example.org"};
  auto mailer = makeMailer(options);
  const auto sent = counter("mails_sent_total");
  const auto begin = std::chrono::steady_clock::now();
  mailer->submit(sampleNotice("mallory@example.org\r\nBcc: victim@example.net"));
  ASSERT_TRUE(waitUntil([&] { return counter("mails_sent_total") == sent + 1; }));
  const auto delivery_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - begin)
                               .count();
  ASSERT_TRUE(sink.waitForMessages(1));
  const auto dump = sink.messages().at(0);
  EXPECT_NE(dump.find("X-Mail-Args: <saslguard@example.org>"), std::string::npos) << dump;
  EXPECT_NE(dump.find("X-Rcpt-Args: <postmaster@example.org>"), std::string::npos);
  EXPECT_NE(dump.find("X-Rcpt-Args: <security@example.org>"), std::string::npos);
  EXPECT_EQ(dump.find("victim@example.net>"), std::string::npos);  // not a recipient
  EXPECT_NE(dump.find("\nFrom: saslguard <saslguard@example.org>\n"), std::string::npos);
  EXPECT_NE(dump.find("\nTo: Postmaster <postmaster@example.org>, security@example.org\n"),
            std::string::npos);
  EXPECT_NE(dump.find("\nSubject: saslguard: mallory@example.org  Bcc: victim@example.net marked "
                      "compromised by reputation\n"),
            std::string::npos);
  // The account's line break became a space in the header; in the body it is just text.
  EXPECT_EQ(dump.substr(0, dump.find("\n\n")).find("\nBcc:"), std::string::npos);
  // smtp-sink undoes the dot-stuffing curl did: the lines arrive as written.
  EXPECT_NE(dump.find("\n.\n..two dots\n{\"zone\":\"authbl.example\",\"answer\":\"127.0.0.2\"}\n"),
            std::string::npos)
      << dump;
  std::cout << "[ measured ] one mail to smtp-sink: " << delivery_ms << " ms from submit\n";
  stopNow(*mailer);
}

TEST(Mailer, RetriesWhileTheServerIsDownAndDeliversOnceItIsUp) {
  REQUIRE_SMTP_SINK();
  const auto port = SmtpSink::freePort();
  auto options = mailOptions("smtp://127.0.0.1:" + std::to_string(port));
  options.max_attempts = 50;
  auto mailer = makeMailer(options);
  const auto failed = counter("mail_attempts_failed_total");
  const auto sent = counter("mails_sent_total");
  mailer->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("mail_attempts_failed_total") >= failed + 2; }));
  EXPECT_EQ(counter("mails_sent_total"), sent);
  SmtpSink sink(port);
  ASSERT_TRUE(sink.running()) << sink.log();
  ASSERT_TRUE(waitUntil([&] { return counter("mails_sent_total") == sent + 1; }));
  ASSERT_TRUE(sink.waitForMessages(1));
  EXPECT_NE(sink.messages().at(0).find("alice@example.org marked compromised"), std::string::npos);
  stopNow(*mailer);
}

TEST(Mailer, GivesUpAfterMaxAttempts) {
  auto options = mailOptions("smtp://127.0.0.1:" + std::to_string(SmtpSink::freePort()));
  options.max_attempts = 3;
  options.first_retry = 20ms;
  options.max_retry = 40ms;
  CapturedLog log;
  auto mailer = makeMailer(options);
  const auto failed = counter("mail_attempts_failed_total");
  const auto dropped = counter("mails_dropped_total");
  mailer->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("mails_dropped_total") == dropped + 1; }));
  EXPECT_EQ(counter("mail_attempts_failed_total"), failed + 3);
  EXPECT_EQ(mailer->queued(), 0u);
  EXPECT_NE(log.text().find("given up after 3 attempt(s)"), std::string::npos) << log.text();
  stopNow(*mailer);
}

TEST(Mailer, PermanentRefusalIsNotRetried) {
  REQUIRE_SMTP_SINK();
  SmtpSink sink(0, {"-f", "RCPT"});  // 5xx to every RCPT
  ASSERT_TRUE(sink.running()) << sink.log();
  auto options = mailOptions(sink.url());
  options.max_attempts = 5;
  auto mailer = makeMailer(options);
  const auto failed = counter("mail_attempts_failed_total");
  const auto dropped = counter("mails_dropped_total");
  mailer->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("mails_dropped_total") == dropped + 1; }));
  EXPECT_EQ(counter("mail_attempts_failed_total"), failed + 1);
  stopNow(*mailer);
}

TEST(Mailer, RequireTlsRefusesAServerWithoutStarttls) {
  REQUIRE_SMTP_SINK();
  SmtpSink sink;
  ASSERT_TRUE(sink.running()) << sink.log();
  auto options = mailOptions(sink.url());
  options.require_tls = true;
  options.max_attempts = 2;
  options.first_retry = options.max_retry = 20ms;
  auto mailer = makeMailer(options);
  const auto failed = counter("mail_attempts_failed_total");
  const auto dropped = counter("mails_dropped_total");
  mailer->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("mails_dropped_total") == dropped + 1; }));
  EXPECT_EQ(counter("mail_attempts_failed_total"), failed + 2);
  EXPECT_TRUE(sink.messages().empty());
  stopNow(*mailer);
}

// A listener that accepts connections and never says a word: an SMTP server that hangs.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 64);  // the kernel completes the handshakes; nobody accepts
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  unsigned short port() const { return port_; }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

TEST(Mailer, SubmitNeverWaitsAndStopAbortsATransferInProgress) {
  SilentServer server;
  auto options = mailOptions("smtp://127.0.0.1:" + std::to_string(server.port()));
  options.timeout = 30s;
  auto mailer = makeMailer(options);
  const auto dropped = counter("mails_dropped_total");
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 0; i < 50; ++i) {
    const auto begin = std::chrono::steady_clock::now();
    mailer->submit(sampleNotice());
    slowest = std::max(slowest, std::chrono::steady_clock::now() - begin);
  }
  EXPECT_LT(slowest, 500ms);
  std::this_thread::sleep_for(300ms);  // the first attempt now waits for a greeting
  const auto begin = std::chrono::steady_clock::now();
  mailer->requestStop(begin + 100ms);
  mailer->join();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
  EXPECT_EQ(counter("mails_dropped_total"), dropped + 50);
}

TEST(Mailer, FullQueueDrops) {
  SilentServer server;
  auto options = mailOptions("smtp://127.0.0.1:" + std::to_string(server.port()));
  options.max_queued = 10;
  auto mailer = makeMailer(options);
  const auto dropped = counter("mails_dropped_total");
  for (int i = 0; i < 1000; ++i) mailer->submit(sampleNotice());
  EXPECT_LE(mailer->queued(), 10u);
  EXPECT_GE(counter("mails_dropped_total") - dropped, 989u);  // 1,000 - 10 - the one in flight
  stopNow(*mailer);
  EXPECT_EQ(counter("mails_dropped_total") - dropped, 1000u);
}

// A scripted SMTP server for AUTH: smtp-sink answers AUTH with 250 instead of 235, which curl
// rightly takes for a refusal. Records the AUTH line it got.
class AuthServer {
 public:
  AuthServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listen_fd_, 4);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serveOne(); });
  }
  ~AuthServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  unsigned short port() const { return port_; }
  std::string authLine() {
    std::lock_guard lock(mutex_);
    return auth_line_;
  }

 private:
  void serveOne() {
    pollfd ready{listen_fd_, POLLIN, 0};
    if (::poll(&ready, 1, 15000) <= 0) return;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::string buffer;
    auto say = [&](const std::string& text) { (void)::write(fd, text.data(), text.size()); };
    auto line = [&]() -> std::optional<std::string> {
      while (buffer.find("\r\n") == std::string::npos) {
        char chunk[512];
        pollfd in{fd, POLLIN, 0};
        if (::poll(&in, 1, 10000) <= 0) return std::nullopt;
        const auto n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) return std::nullopt;
        buffer.append(chunk, static_cast<std::size_t>(n));
      }
      auto text = buffer.substr(0, buffer.find("\r\n"));
      buffer.erase(0, text.size() + 2);
      return text;
    };
    say("220 auth.test ESMTP\r\n");
    bool in_data = false;
    while (auto text = line()) {
      if (in_data) {
        if (*text == ".") {
          in_data = false;
          say("250 2.0.0 queued\r\n");
        }
        continue;
      }
      const auto verb = text->substr(0, 4);
      if (verb == "EHLO") {
        say("250-auth.test\r\n250 AUTH PLAIN\r\n");
      } else if (verb == "AUTH") {
        std::lock_guard lock(mutex_);
        auth_line_ = *text;
        if (*text == "AUTH PLAIN") {  // no initial response: ask for it
          say("334 \r\n");
          if (auto credentials = line()) auth_line_ += " " + *credentials;
        }
        say("235 2.7.0 Authentication successful\r\n");
      } else if (verb == "DATA") {
        in_data = true;
        say("354 go ahead\r\n");
      } else if (verb == "QUIT") {
        say("221 bye\r\n");
        break;
      } else {
        say("250 2.0.0 ok\r\n");
      }
    }
    ::close(fd);
  }

  int listen_fd_ = -1;
  unsigned short port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::string auth_line_;
};

TEST(Mailer, AuthenticatesWithPlainAndNeverLogsThePassword) {
  AuthServer server;
  auto options = mailOptions("smtp://127.0.0.1:" + std::to_string(server.port()));
  options.username = "saslguard";
  options.password = "s3cret-Pa55";
  CapturedLog log;
  auto mailer = makeMailer(options);
  const auto sent = counter("mails_sent_total");
  mailer->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("mails_sent_total") == sent + 1; }));
  // base64("\0saslguard\0s3cret-Pa55")
  EXPECT_NE(server.authLine().find("AHNhc2xndWFyZABzM2NyZXQtUGE1NQ=="), std::string::npos)
      << server.authLine();
  stopNow(*mailer);
  EXPECT_EQ(log.text().find("s3cret"), std::string::npos) << log.text();
}

TEST(Mailer, SmtpSinkAuthQuirkCountsAsAFailedAttemptWithoutLeakingThePassword) {
  REQUIRE_SMTP_SINK();
  SmtpSink sink;  // offers AUTH PLAIN LOGIN, then answers 250 where 235 is due
  ASSERT_TRUE(sink.running()) << sink.log();
  auto options = mailOptions(sink.url());
  options.username = "saslguard";
  options.password = "s3cret-Pa55";
  options.max_attempts = 1;
  CapturedLog log;
  auto mailer = makeMailer(options);
  const auto failed = counter("mail_attempts_failed_total");
  mailer->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("mail_attempts_failed_total") == failed + 1; }));
  stopNow(*mailer);
  EXPECT_NE(log.text().find("given up"), std::string::npos) << log.text();
  EXPECT_EQ(log.text().find("s3cret"), std::string::npos) << log.text();
}

TEST(Notifier, MailOnlyNotifierSendsAndStopsPromptly) {
  REQUIRE_SMTP_SINK();
  SmtpSink sink;
  ASSERT_TRUE(sink.running()) << sink.log();
  auto notifier = Notifier::create({}, mailOptions(sink.url()));
  ASSERT_TRUE(notifier) << notifier.error().message;
  (*notifier)->submit(sampleNotice("carol@example.org"));
  (*notifier)->stop(10s);  // the due mail still goes out within the grace
  ASSERT_TRUE(sink.waitForMessages(1));
  EXPECT_NE(sink.messages().at(0).find("carol@example.org"), std::string::npos);
}

TEST(Notifier, StopKeepsToTheGraceWhenHookAndMailAreBothStuck) {
  SilentServer server;
  auto notifier =
      Notifier::create({.command = {"/bin/sleep", "60"}, .timeout = 60s},
                       mailOptions("smtp://127.0.0.1:" + std::to_string(server.port())));
  ASSERT_TRUE(notifier) << notifier.error().message;
  const auto killed = counter("hooks_killed_total");
  const auto dropped = counter("mails_dropped_total");
  (*notifier)->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("hooks_started_total") > 0; }));
  std::this_thread::sleep_for(200ms);  // the mail attempt now waits for a greeting
  const auto begin = std::chrono::steady_clock::now();
  (*notifier)->stop(300ms);
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 1000ms);
  EXPECT_EQ(counter("hooks_killed_total"), killed + 1);
  EXPECT_EQ(counter("mails_dropped_total"), dropped + 1);
}

}  // namespace
}  // namespace saslguard::notify
