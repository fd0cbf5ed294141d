// mailer.hpp — e-mails the operator once per new compromise mark through libcurl SMTP, on a
// thread of its own: a bounded queue, one attempt at a time, exponential back-off between
// attempts, and a prompt stop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "notify/notifier.hpp"

namespace saslguard::notify {

// The whole message as sent after DATA: headers, an empty line, the body; CRLF line ends and no
// line longer than 998 bytes. Header values made from the notice cannot add header lines.
std::string buildMessage(const MailOptions& options, const Notice& notice, TimePoint now,
                         std::string_view message_id);

// "Mon, 23 Nov 2026 07:52:17 +0000" (RFC 5322 date-time, UTC, English names whatever the locale).
std::string formatRfc5322(TimePoint at);

// One line of header text: CR, LF and other control bytes become spaces; non-ASCII text becomes
// RFC 2047 encoded words (UTF-8, base64) folded to fit the line limit.
std::string headerText(std::string_view value);

// The address SMTP's MAIL FROM / RCPT TO take: "Ops <ops@example.org>" gives "ops@example.org";
// a bare address is returned trimmed. The headers keep what the operator wrote.
std::string envelopeAddress(std::string_view address);

class Mailer {
 public:
  using Ptr = std::unique_ptr<Mailer>;
  using SteadyClock = std::chrono::steady_clock;
  // Fails, naming the field, on a URL that is not smtp:// or smtps://, a missing From or To, or
  // bounds that cannot work.
  static Result<Ptr> create(MailOptions options);
  ~Mailer();
  Mailer(const Mailer&) = delete;
  Mailer& operator=(const Mailer&) = delete;

  // Queues one mail; a full queue or a stopping mailer drops it (counted). Never waits for SMTP.
  void submit(const Notice& notice);
  // No new mail from now on; due attempts still run until `deadline`, then the transfer in
  // progress is aborted and what is left is dropped. join() returns when the thread has ended.
  void requestStop(SteadyClock::time_point deadline);
  void join();

  std::size_t queued();

 private:
  struct Pending {
    Notice notice;
    std::string message;  // built at the first attempt; the same bytes and Message-ID after
    int attempts = 0;
    SteadyClock::time_point next_attempt{};
  };
  struct Attempt {
    bool delivered = false;
    bool permanent = false;  // the server answered 5xx: another attempt would fail the same way
    std::string error;
  };

  Mailer(MailOptions options, void* multi);
  void run();
  Attempt send(const std::string& message);
  std::string newMessageId();
  std::chrono::milliseconds retryDelay(int failed_attempts) const;

  const MailOptions options_;
  // A plain mutex, not Guarded: the thread sleeps on wake_ with it. It guards the four below.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Pending> pending_;
  bool stopping_ = false;
  SteadyClock::time_point stop_deadline_{};
  std::uint64_t drops_not_logged_ = 0;
  // The stop deadline in steady-clock nanoseconds, read by the transfer loop without the mutex.
  std::atomic<std::int64_t> abort_after_ns_{INT64_MAX};
  // A CURLM* (curl's typedef is void): every attempt runs on it; requestStop() wakes it.
  void* const multi_;
  std::uint64_t message_counter_ = 0;  // mailer thread only, as the next one
  std::mt19937_64 message_id_random_{std::random_device{}()};
  std::thread thread_;
};

}  // namespace saslguard::notify
