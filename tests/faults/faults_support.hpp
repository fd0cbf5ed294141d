// faults_support.hpp — what the fault and load tests share: saslguard-load run as a child process
// and its RESULT line, /metrics scraped into numbers, a probe that times every reply on its own
// connection while a fault is on, and the process limits (open files, resident memory).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace saslguard::testing {

using Figures = std::map<std::string, double>;
using SteadyClock = std::chrono::steady_clock;

// The built load generator: SASLGUARD_LOAD_BINARY when set, else bench/saslguard-load beside
// the daemon's binary.
std::filesystem::path loadGeneratorBinary();

// `key=value` pairs of a "RESULT ..." line (the last one in `text`); empty when there is none.
Figures parseResultLine(const std::string& text);

// saslguard-load in the background (closed loop unless --rate is given); wait() reads its RESULT.
class LoadGenerator {
 public:
  LoadGenerator(std::vector<std::string> arguments, std::filesystem::path output);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;
  // Waits for it to exit (SIGKILL after `timeout`); the RESULT line's figures, empty on failure.
  Figures wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  std::string output() const;

 private:
  pid_t pid_ = -1;
  std::filesystem::path output_;
};

// GET /metrics on the admin API, as "name{labels}" -> value (labels as the daemon prints them).
Figures scrapeMetrics(unsigned short admin_port);
// One series of a scrape; 0 when it is absent.
double series(const Figures& metrics, const std::string& name);

// `request` with attribute `name` set to `value` (the line replaced, or added before the end).
std::string withAttribute(std::string request, const std::string& name, const std::string& value);

struct ProbeSample {
  std::chrono::milliseconds at;       // since the probe started
  std::chrono::milliseconds latency;  // request sent to reply read (or given up)
  std::string reply;                  // empty: no reply (timeout or closed)
};

// A client of its own asking one request every `interval` (request(i) builds the i-th), on one
// connection reopened when it breaks; every reply's time is kept.
class Probe {
 public:
  Probe(unsigned short port, std::function<std::string(int)> request,
        std::chrono::milliseconds interval = std::chrono::milliseconds(20));
  ~Probe();
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;
  void stop();
  std::vector<ProbeSample> samples() const;
  std::chrono::milliseconds now() const;
  // The first sample at or after `from` whose reply satisfies `good` (nullopt: none yet).
  std::optional<ProbeSample> firstAfter(std::chrono::milliseconds from,
                                        const std::function<bool(const std::string&)>& good) const;
  // Waits until such a sample exists (true) or `timeout` passes.
  bool waitFor(std::chrono::milliseconds from, const std::function<bool(const std::string&)>& good,
               std::chrono::milliseconds timeout) const;

 private:
  void run();

  unsigned short port_;
  std::function<std::string(int)> request_;
  std::chrono::milliseconds interval_;
  SteadyClock::time_point started_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<ProbeSample> samples_;
  std::thread thread_;
};

// Latency figures of samples with `at` in [from, to).
struct LatencySummary {
  std::size_t count = 0;
  std::size_t unanswered = 0;
  double p50_ms = 0;
  double max_ms = 0;
  std::map<std::string, std::size_t> replies;  // first word after "action=" -> count
};
LatencySummary summarize(const std::vector<ProbeSample>& samples, std::chrono::milliseconds from,
                         std::chrono::milliseconds to);
std::string describe(const LatencySummary& summary);

// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.
std::size_t raiseOpenFileLimit();
// VmRSS of a process in KiB (0 when unreadable).
long residentKib(pid_t pid);
// Open file descriptors of a process (entries of /proc/PID/fd).
std::size_t openDescriptors(pid_t pid);

}  // namespace saslguard::testing
