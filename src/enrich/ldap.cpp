// ldap.cpp — LdapMapper: option checks, the answer cache in front, and the pool of worker
// threads behind, each owning one LdapConnection. A coroutine's map() queues a job holding its
// completion handler; the worker posts the answer back to that coroutine's executor.
#include "enrich/ldap.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <mutex>
#include <semaphore>
#include <thread>

#include "common/guarded.hpp"
#include "common/log.hpp"
#include "enrich/ldap_cache.hpp"
#include "enrich/ldap_connection.hpp"
#include "metrics/metrics.hpp"

namespace saslguard::enrich {
namespace {

namespace asio = boost::asio;

Result<void> checkOptions(const LdapOptions& options) {
  if (options.uris.empty()) return fail("ldap uris: at least one URI is needed");
  for (const auto& uri : options.uris) {
    const std::string_view text(uri);
    if (!text.starts_with("ldap://") && !text.starts_with("ldaps://") &&
        !text.starts_with("ldapi://")) {
      return fail("ldap uris: '" + uri + "' does not start with ldap://, ldaps:// or ldapi://");
    }
  }
  if (options.scope != "base" && options.scope != "one" && options.scope != "sub") {
    return fail("ldap scope: '" + options.scope + "' is not base, one or sub");
  }
  if (options.filter.find("%s") == std::string::npos) {
    return fail("ldap filter: '" + options.filter + "' has no %s for the identity");
  }
  if (options.result_attribute.empty()) return fail("ldap result_attribute: must not be empty");
  if (options.bind_method != "simple" && options.bind_method != "external") {
    return fail("ldap bind_method: '" + options.bind_method + "' is not simple or external");
  }
  const std::pair<const char*, const std::string*> files[] = {{"ca_file", &options.ca_file},
                                                              {"cert_file", &options.cert_file},
                                                              {"key_file", &options.key_file}};
  for (const auto& [field, path] : files) {
    if (!path->empty() && ::access(path->c_str(), R_OK) != 0) {
      return fail(std::string("ldap ") + field + ": cannot read '" + *path + "'");
    }
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return fail("ldap cert_file, key_file: set both or neither");
  }
  if (options.timeout <= std::chrono::milliseconds::zero())
    return fail("ldap timeout: must be > 0");
  if (options.pool_size < 1) return fail("ldap pool_size: must be at least 1");
  if (options.max_queued < 1) return fail("ldap max_queued: must be at least 1");
  return {};
}

LdapAnswer failedAnswer(std::string error) {
  LdapAnswer answer;
  answer.status = LdapStatus::kFailed;
  answer.error = std::move(error);
  return answer;
}

class PooledLdapMapper final : public LdapMapper {
 public:
  explicit PooledLdapMapper(LdapOptions options)
      : options_(std::move(options)),
        cache_(options_.cache_entries, options_.cache_ttl, options_.negative_cache_ttl) {
    if (!options_.clock) options_.clock = [] { return std::chrono::steady_clock::now(); };
    workers_.reserve(options_.pool_size);
    for (std::size_t i = 0; i < options_.pool_size; ++i) {
      workers_.emplace_back([this] { work(); });
    }
  }
  ~PooledLdapMapper() override { stop(); }

  std::optional<LdapAnswer> cached(std::string_view identity) override {
    return cache_.find(identity, options_.clock());
  }

  asio::awaitable<LdapAnswer> map(std::string identity) override {
    if (auto hit = cached(identity)) {
      SASLGUARD_COUNT(ldap_cache_hits_total);
      co_return std::move(*hit);
    }
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(LdapAnswer)>(
        [this](auto handler, std::string identity) {
          // The tracked executor keeps the coroutine's io_context running while the job waits.
          Job job{std::move(identity), std::chrono::steady_clock::now() + options_.timeout,
                  asio::prefer(asio::get_associated_executor(handler),
                               asio::execution::outstanding_work.tracked),
                  std::move(handler)};
          enqueue(std::move(job));
        },
        asio::use_awaitable, std::move(identity));
  }

  void stop() override {
    std::call_once(stopped_, [this] {
      std::deque<Job> abandoned;
      {
        auto queue = queue_.lock();
        queue->stopping = true;
        abandoned.swap(queue->jobs);
      }
      for (auto& job : abandoned) complete(job, failedAnswer("stopping"));
      // Wake every worker; those without a job see `stopping` and leave.
      jobs_waiting_.release(static_cast<std::ptrdiff_t>(workers_.size()));
      for (auto& worker : workers_) worker.join();
    });
  }

 private:
  struct Job {
    std::string identity;
    // map()'s promise: answered by then, time spent in the queue included.
    std::chrono::steady_clock::time_point deadline;
    asio::any_io_executor executor;  // the awaiting coroutine's, with outstanding work tracked
    asio::any_completion_handler<void(LdapAnswer)> handler;
  };
  struct Queue {
    std::deque<Job> jobs;
    bool stopping = false;
  };

  static void complete(Job& job, LdapAnswer answer) {
    asio::post(job.executor,
               [handler = std::move(job.handler), answer = std::move(answer)]() mutable {
                 std::move(handler)(std::move(answer));
               });
  }

  std::size_t queued() override { return queue_.lock()->jobs.size(); }

  void enqueue(Job job) {
    {
      auto queue = queue_.lock();
      if (!queue->stopping && queue->jobs.size() < options_.max_queued) {
        queue->jobs.push_back(std::move(job));
        jobs_waiting_.release();
        return;
      }
      if (queue->stopping) {
        complete(job, failedAnswer("stopping"));
        return;
      }
    }
    SASLGUARD_COUNT(ldap_dropped_total);
    if (log::peerWarningAllowed()) {
      spdlog::warn("LDAP queue full ({} waiting): mapping of {} failed", options_.max_queued,
                   job.identity);
    }
    complete(job, failedAnswer("queue full"));
  }

  std::optional<Job> nextJob() {
    jobs_waiting_.acquire();
    auto queue = queue_.lock();
    if (queue->jobs.empty()) return std::nullopt;  // stop() took them, or is waking us
    Job job = std::move(queue->jobs.front());
    queue->jobs.pop_front();
    return job;
  }

  void work() {
    // libldap writes to sockets the server may have closed; the write must fail with EPIPE in
    // this thread instead of killing the process.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

    LdapConnection connection(options_, &connects_);
    while (true) {
      auto job = nextJob();
      if (!job) {
        if (queue_.lock()->stopping) return;
        continue;
      }
      // Every worker was held by a server that does not answer: the caller was promised an
      // answer within the timeout, and a search now could only make it later.
      auto answer = std::chrono::steady_clock::now() >= job->deadline
                        ? failedAnswer("no LDAP connection free within the timeout (" +
                                       std::to_string(options_.timeout.count()) + " ms)")
                        : connection.lookUp(job->identity, job->deadline);
      if (answer.status == LdapStatus::kFailed) {
        SASLGUARD_COUNT(ldap_failures_total);
        if (log::peerWarningAllowed()) {
          spdlog::warn("LDAP mapping of {} failed: {}", job->identity, answer.error);
        }
      } else {
        cache_.store(job->identity, answer, options_.clock());
      }
      complete(*job, std::move(answer));
    }
  }

  LdapOptions options_;
  LdapCache cache_;
  Guarded<Queue> queue_;
  std::counting_semaphore<> jobs_waiting_{0};
  std::atomic<std::uint64_t> connects_{0};  // the workers' successful connects (LdapConnection)
  std::vector<std::thread> workers_;
  std::once_flag stopped_;
};

}  // namespace

Result<std::shared_ptr<LdapMapper>> LdapMapper::create(LdapOptions options) {
  if (auto checked = checkOptions(options); !checked) return tl::unexpected(checked.error());
  return std::make_shared<PooledLdapMapper>(std::move(options));
}

std::string escapeFilterValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string escaped;
  escaped.reserve(value.size());
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '*' || c == '(' || c == ')' || c == '\\' || byte == 0 || byte >= 0x80) {
      escaped += '\\';
      escaped += kHex[byte >> 4];
      escaped += kHex[byte & 0x0f];
    } else {
      escaped += c;
    }
  }
  return escaped;
}

}  // namespace saslguard::enrich
