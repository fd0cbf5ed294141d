// mailer.cpp — the operator e-mail: builds an RFC 5322 message that a hostile account name cannot
// add headers to, and hands it to libcurl's SMTP client (which does the dot-stuffing and the
// final "."), one attempt at a time on the mailer thread, with back-off between attempts.
#include "notify/mailer.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <ctime>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "metrics/metrics.hpp"

namespace saslguard::notify {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr std::string_view kDefaultBody =
    "saslguard marked an account as compromised.\n"
    "\n"
    "Account:        {account}\n"
    "Detector:       {detector}\n"
    "Action:         {action}\n"
    "Reason:         {reason}\n"
    "Client address: {client_address}\n"
    "Time:           {time}\n"
    "\n"
    "Evidence:\n"
    "{evidence}\n";

// RFC 5322 allows 998 bytes a line; header values longer than this are cut, body lines broken.
constexpr std::size_t kLineLimitBytes = 998;
constexpr std::size_t kHeaderValueLimitBytes = 900;

bool isContinuationByte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                       static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
            kAlphabet[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v =
        static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

// CRLF line ends whatever the template used, and no line over the limit (broken between
// characters, not inside a UTF-8 sequence). Dot-stuffing is curl's job.
std::string normaliseBody(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32 + 2);
  std::size_t line_bytes = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
      line_bytes = 0;
      continue;
    }
    if (line_bytes >= kLineLimitBytes - 8 && !isContinuationByte(c)) {
      out += "\r\n";
      line_bytes = 0;
    }
    out += c;
    ++line_bytes;
  }
  if (line_bytes > 0 || out.empty()) out += "\r\n";
  return out;
}

// The domain for Message-ID: the From address's, if it looks like one.
std::string messageIdDomain(std::string_view from) {
  const auto at = from.rfind('@');
  std::string domain;
  if (at != std::string_view::npos) {
    for (const char c : from.substr(at + 1)) {
      if (c == '>') break;
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-';
      if (!ok) return "saslguard.invalid";
      domain += c;
    }
  }
  return domain.empty() ? "saslguard.invalid" : domain;
}

std::int64_t steadyNanoseconds(Mailer::SteadyClock::time_point at) {
  return duration_cast<nanoseconds>(at.time_since_epoch()).count();
}

size_t readMessage(char* buffer, size_t size, size_t count, void* cursor_pointer) {
  auto* cursor = static_cast<std::pair<const std::string*, std::size_t>*>(cursor_pointer);
  const auto& [text, offset] = *cursor;
  const auto n = std::min(size * count, text->size() - offset);
  text->copy(buffer, n, offset);
  cursor->second += n;
  return n;
}

// curl calls this on every pass of curl_multi_perform(): non-zero aborts the transfer and closes
// the connection at once, without the QUIT a removed handle would first wait for.
int abortWhenStopped(void* abort_after_ns, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto deadline = static_cast<std::atomic<std::int64_t>*>(abort_after_ns)->load();
  return steadyNanoseconds(Mailer::SteadyClock::now()) >= deadline ? 1 : 0;
}

void initialiseCurlOnce() {
  static std::once_flag once;  // curl_global_init must run once, before any easy handle
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool hasLineBreak(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

}  // namespace

std::string envelopeAddress(std::string_view address) {
  const auto open = address.rfind('<');
  const auto close = address.rfind('>');
  if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
    return std::string(address.substr(open + 1, close - open - 1));
  }
  return std::string(trim(address));
}

std::string formatRfc5322(TimePoint at) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t seconds = Clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[utc.tm_wday],
                utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return text;
}

std::string headerText(std::string_view value) {
  std::string flat;
  bool ascii = true;
  for (const char c : value.substr(0, kHeaderValueLimitBytes)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      flat += ' ';  // CR and LF above all: no header line can be added through a value
    } else {
      flat += c;
      if (byte >= 0x80) ascii = false;
    }
  }
  // A cut in the middle of a UTF-8 sequence would leave a broken character at the end.
  if (value.size() > kHeaderValueLimitBytes) {
    while (!flat.empty() && isContinuationByte(flat.back())) flat.pop_back();
    if (!flat.empty() && static_cast<unsigned char>(flat.back()) >= 0xC0) flat.pop_back();
  }
  if (ascii) return flat;
  // RFC 2047: encoded words of at most 75 characters, so 45 input bytes each, never splitting a
  // UTF-8 sequence; folded onto continuation lines.
  std::string out;
  std::size_t start = 0;
  while (start < flat.size()) {
    std::size_t end = std::min(flat.size(), start + 45);
    while (end < flat.size() && end > start + 1 && isContinuationByte(flat[end])) --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(std::string_view(flat).substr(start, end - start)) + "?=";
    start = end;
  }
  return out;
}

std::string buildMessage(const MailOptions& options, const Notice& notice, TimePoint now,
                         std::string_view message_id) {
  std::string to;
  for (const auto& address : options.to) to += (to.empty() ? "" : ", ") + address;
  std::string message;
  message += "Date: " + formatRfc5322(now) + "\r\n";
  message += "From: " + headerText(options.from) + "\r\n";
  message += "To: " + headerText(to) + "\r\n";
  message += "Subject: " + headerText(expandTemplate(options.subject_template, notice)) + "\r\n";
  message += "Message-ID: " + std::string(message_id) + "\r\n";
  message += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no vacation replies to this
  message += "MIME-Version: 1.0\r\n";
  message += "Content-Type: text/plain; charset=utf-8\r\n";
  message += "Content-Transfer-Encoding: 8bit\r\n";
  message += "\r\n";
  const std::string_view body =
      options.body_template.empty() ? kDefaultBody : std::string_view(options.body_template);
  message += normaliseBody(expandTemplate(body, notice));
  return message;
}

Result<Mailer::Ptr> Mailer::create(MailOptions options) {
  const auto scheme_end = options.url.find("://");
  const auto scheme =
      toLowerAscii(options.url.substr(0, scheme_end == std::string::npos ? 0 : scheme_end));
  if (scheme != "smtp" && scheme != "smtps") {
    return fail("mail url: must start with smtp:// or smtps://");  // the URL may hold a password
  }
  if (scheme_end + 3 >= options.url.size()) return fail("mail url: no host");
  if (options.from.empty()) return fail("mail from: required when mail url is set");
  if (hasLineBreak(options.from)) return fail("mail from: contains a line break");
  if (options.to.empty())
    return fail("mail to: at least one address required when mail url is set");
  for (const auto& address : options.to) {
    if (address.empty()) return fail("mail to: empty address");
    if (hasLineBreak(address))
      return fail("mail to: " + quoteForLog(address) + " contains a line break");
  }
  if (options.max_attempts < 1) return fail("mail max_attempts: must be at least 1");
  if (options.timeout <= milliseconds::zero()) return fail("mail timeout: must be positive");
  if (options.first_retry <= milliseconds::zero())
    return fail("mail first_retry: must be positive");
  if (options.max_retry < options.first_retry) {
    return fail("mail max_retry: must not be shorter than first_retry");
  }
  if (options.max_queued == 0) return fail("mail max_queued: must be at least 1");
  initialiseCurlOnce();
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return fail("mail: curl_multi_init failed");
  return Ptr(new Mailer(std::move(options), multi));
}

Mailer::Mailer(MailOptions options, void* multi)
    : options_(std::move(options)), multi_(multi), thread_([this] { run(); }) {}

Mailer::~Mailer() {
  requestStop(SteadyClock::now());
  join();
  curl_multi_cleanup(multi_);
}

void Mailer::submit(const Notice& notice) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && pending_.size() < options_.max_queued) {
      pending_.push_back(Pending{notice, {}, 0, SteadyClock::now()});
      if (pending_.back().notice.at == TimePoint{}) pending_.back().notice.at = Clock::now();
    } else {
      SASLGUARD_COUNT(mails_dropped_total);
      ++drops_not_logged_;
      if (log::peerWarningAllowed()) {
        spdlog::warn("mail queue {} ({} waiting): dropped {} mail(s), last for account {}",
                     stopping_ ? "stopped" : "full", pending_.size(), drops_not_logged_,
                     quoteForLog(notice.account));
        drops_not_logged_ = 0;
      }
      return;
    }
  }
  wake_.notify_one();
}

void Mailer::requestStop(SteadyClock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    stop_deadline_ = stopping_ ? std::min(stop_deadline_, deadline) : deadline;
    stopping_ = true;
    abort_after_ns_.store(steadyNanoseconds(stop_deadline_));
  }
  wake_.notify_one();
  curl_multi_wakeup(multi_);  // a transfer in progress looks at the deadline now
}

void Mailer::join() {
  if (thread_.joinable()) thread_.join();
}

std::size_t Mailer::queued() {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

std::chrono::milliseconds Mailer::retryDelay(int failed_attempts) const {
  auto delay = options_.first_retry;
  for (int i = 1; i < failed_attempts && delay < options_.max_retry; ++i) delay *= 2;
  return std::min(delay, options_.max_retry);
}

std::string Mailer::newMessageId() {
  char text[96];
  std::snprintf(text, sizeof text, "<%lld.%llu.%016llx@",
                static_cast<long long>(toUnixMs(Clock::now())),
                static_cast<unsigned long long>(++message_counter_),
                static_cast<unsigned long long>(message_id_random_()));
  return text + messageIdDomain(options_.from) + ">";
}

Mailer::Attempt Mailer::send(const std::string& message) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return {false, false, "curl_easy_init failed"};
  curl_slist* list = nullptr;
  for (const auto& address : options_.to) {
    list = curl_slist_append(list, envelopeAddress(address).c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> recipients(list,
                                                                         &curl_slist_free_all);
  std::pair<const std::string*, std::size_t> cursor{&message, 0};
  char error_text[CURL_ERROR_SIZE] = "";
  const bool tls_on_connect = toLowerAscii(options_.url.substr(0, 6)) == "smtps:";

  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_VERBOSE, 0L);   // verbose output would show AUTH PLAIN
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(handle, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(handle, CURLOPT_USE_SSL,
                   options_.require_tls || tls_on_connect ? CURLUSESSL_ALL : CURLUSESSL_TRY);
  curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
  curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
  if (!options_.username.empty()) {
    curl_easy_setopt(handle, CURLOPT_USERNAME, options_.username.c_str());
    curl_easy_setopt(handle, CURLOPT_PASSWORD, options_.password.c_str());
  }
  const auto from = envelopeAddress(options_.from);  // curl adds the angle brackets
  curl_easy_setopt(handle, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(handle, CURLOPT_MAIL_RCPT, recipients.get());
  // One refused recipient must not cost the others their mail.
#ifdef CURLOPT_MAIL_RCPT_ALLLOWFAILS  // curl 8.2 fixed the name and keeps the old as a macro
  curl_easy_setopt(handle, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#else
  curl_easy_setopt(handle, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
  curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(handle, CURLOPT_READFUNCTION, &readMessage);
  curl_easy_setopt(handle, CURLOPT_READDATA, &cursor);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(handle, CURLOPT_FORBID_REUSE, 1L);  // QUIT now; a retry starts afresh
  curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, &abortWhenStopped);
  curl_easy_setopt(handle, CURLOPT_XFERINFODATA, &abort_after_ns_);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_text);

  // The multi interface rather than curl_easy_perform(), so requestStop() can interrupt the
  // wait at once (curl_multi_wakeup) instead of at curl's next one-second tick; the progress
  // callback then aborts the transfer on the next pass.
  CURLcode code = CURLE_OK;
  curl_multi_add_handle(multi_, handle);
  while (true) {
    int running = 0;
    if (curl_multi_perform(multi_, &running) != CURLM_OK) {
      code = CURLE_FAILED_INIT;
      break;
    }
    if (running == 0) {
      int left = 0;
      while (CURLMsg* done = curl_multi_info_read(multi_, &left)) {
        if (done->msg == CURLMSG_DONE && done->easy_handle == handle) code = done->data.result;
      }
      break;
    }
    // Up to a second, and no later than the stop deadline; curl shortens it to its own timers.
    const auto until_stop_ms =
        (abort_after_ns_.load() - steadyNanoseconds(SteadyClock::now())) / 1000000 + 1;
    curl_multi_poll(multi_, nullptr, 0,
                    static_cast<int>(std::clamp<std::int64_t>(until_stop_ms, 0, 1000)), nullptr);
  }
  curl_multi_remove_handle(multi_, handle);
  if (code == CURLE_ABORTED_BY_CALLBACK) return {false, false, "aborted: the notifier is stopping"};
  if (code == CURLE_OK) return {true, false, {}};
  long response = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response);
  std::string error = curl_easy_strerror(code);
  if (error_text[0] != '\0') error += std::string(": ") + error_text;
  if (response != 0) error += " (last reply " + std::to_string(response) + ")";
  return {false, response >= 500 && response < 600, error};
}

void Mailer::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    const auto now = SteadyClock::now();
    if (stopping_ && (now >= stop_deadline_ || pending_.empty())) break;
    if (pending_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto next = std::min_element(
        pending_.begin(), pending_.end(),
        [](const auto& a, const auto& b) { return a.next_attempt < b.next_attempt; });
    if (stopping_ && next->next_attempt >= stop_deadline_) break;  // nothing more can be sent
    if (next->next_attempt > now) {
      wake_.wait_until(
          lock, stopping_ ? std::min(next->next_attempt, stop_deadline_) : next->next_attempt);
      continue;
    }

    Pending mail = std::move(*next);
    pending_.erase(next);
    lock.unlock();
    if (mail.message.empty()) {
      mail.message = buildMessage(options_, mail.notice, Clock::now(), newMessageId());
    }
    const auto started = SteadyClock::now();
    const Attempt attempt = send(mail.message);
    const auto elapsed_ms = duration_cast<milliseconds>(SteadyClock::now() - started).count();
    ++mail.attempts;
    const auto account = quoteForLog(mail.notice.account);
    if (attempt.delivered) {
      SASLGUARD_COUNT(mails_sent_total);
      spdlog::info("mail about account {} sent to {} recipient(s) in {} ms (attempt {})", account,
                   options_.to.size(), elapsed_ms, mail.attempts);
      lock.lock();
      continue;
    }
    SASLGUARD_COUNT(mail_attempts_failed_total);
    if (attempt.permanent || mail.attempts >= options_.max_attempts) {
      SASLGUARD_COUNT(mails_dropped_total);
      spdlog::error("mail about account {} given up after {} attempt(s): {}", account,
                    mail.attempts, attempt.error);
      lock.lock();
      continue;
    }
    const auto delay = retryDelay(mail.attempts);
    spdlog::warn("mail about account {}: attempt {} of {} failed: {}; next in {} ms", account,
                 mail.attempts, options_.max_attempts, attempt.error, delay.count());
    mail.next_attempt = SteadyClock::now() + delay;
    lock.lock();
    pending_.push_back(std::move(mail));
  }

  if (!pending_.empty()) {
    spdlog::warn("mailer stopped: {} mail(s) not sent are dropped", pending_.size());
    for (std::size_t i = 0; i < pending_.size(); ++i) SASLGUARD_COUNT(mails_dropped_total);
    pending_.clear();
  }
}

}  // namespace saslguard::notify
