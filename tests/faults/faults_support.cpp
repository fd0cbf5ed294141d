// faults_support.cpp — see faults_support.hpp.
#include "faults/faults_support.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support/child_process.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"

namespace saslguard::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path loadGeneratorBinary() {
  if (const char* set = std::getenv("SASLGUARD_LOAD_BINARY"); set && *set) return set;
  return fs::path(SASLGUARD_BINARY).parent_path() / "bench" / "saslguard-load";
}

Figures parseResultLine(const std::string& text) {
  Figures figures;
  const auto at = text.rfind("RESULT ");
  if (at == std::string::npos) return figures;
  const auto end = text.find('\n', at);
  std::istringstream words(text.substr(at + 7, end == std::string::npos ? end : end - at - 7));
  for (std::string word; words >> word;) {
    const auto equals = word.find('=');
    if (equals == std::string::npos) continue;
    char* rest = nullptr;
    const auto value = std::strtod(word.c_str() + equals + 1, &rest);
    if (rest && *rest == '\0') figures[word.substr(0, equals)] = value;
  }
  return figures;
}

LoadGenerator::LoadGenerator(std::vector<std::string> arguments, fs::path output)
    : output_(std::move(output)) {
  arguments.insert(arguments.begin(), loadGeneratorBinary().string());
  pid_ = spawnLogged(std::move(arguments), output_);
}

LoadGenerator::~LoadGenerator() {
  if (pid_ > 0) stopChild(pid_, 1s);
}

Figures LoadGenerator::wait(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    if (SteadyClock::now() > deadline) {
      stopChild(pid_, 1s);
      return {};
    }
    std::this_thread::sleep_for(20ms);
  }
  return parseResultLine(output());
}

std::string LoadGenerator::output() const {
  std::ifstream in(output_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Figures scrapeMetrics(unsigned short admin_port) {
  Figures figures;
  const auto response = httpGet(admin_port, "/metrics");
  if (response.status != 200) return figures;
  std::istringstream lines(response.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    figures[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return figures;
}

double series(const Figures& metrics, const std::string& name) {
  const auto found = metrics.find(name);
  return found == metrics.end() ? 0.0 : found->second;
}

std::string withAttribute(std::string request, const std::string& name, const std::string& value) {
  const auto key = name + "=";
  std::size_t at = request.rfind("\n" + key) != std::string::npos ? request.rfind("\n" + key) + 1
                   : request.rfind(key, 0) == 0                   ? 0
                                                                  : std::string::npos;
  if (at == std::string::npos) {
    request.insert(request.size() - 1, key + value + "\n");  // before the empty line
    return request;
  }
  const auto end = request.find('\n', at);
  request.replace(at, end - at, key + value);
  return request;
}

Probe::Probe(unsigned short port, std::function<std::string(int)> request,
             std::chrono::milliseconds interval)
    : port_(port), request_(std::move(request)), interval_(interval), started_(SteadyClock::now()) {
  thread_ = std::thread([this] { run(); });
}

Probe::~Probe() {
  stop();
}

void Probe::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

std::chrono::milliseconds Probe::now() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started_);
}

void Probe::run() {
  std::optional<PolicyClient> client;
  for (int i = 0; !stopping_; ++i) {
    if (!client) {
      if (auto fresh = PolicyClient::connectTcp(port_)) client.emplace(std::move(*fresh));
    }
    const auto sent = SteadyClock::now();
    std::optional<std::string> reply;
    if (client && client->send(request_(i))) reply = client->readReply(10s);
    if (!reply) client.reset();
    const auto done = SteadyClock::now();
    {
      std::lock_guard lock(mutex_);
      samples_.push_back({std::chrono::duration_cast<std::chrono::milliseconds>(sent - started_),
                          std::chrono::duration_cast<std::chrono::milliseconds>(done - sent),
                          reply.value_or("")});
    }
    std::this_thread::sleep_for(interval_);
  }
}

std::vector<ProbeSample> Probe::samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

std::optional<ProbeSample> Probe::firstAfter(
    std::chrono::milliseconds from, const std::function<bool(const std::string&)>& good) const {
  std::lock_guard lock(mutex_);
  for (const auto& sample : samples_) {
    if (sample.at >= from && good(sample.reply)) return sample;
  }
  return std::nullopt;
}

bool Probe::waitFor(std::chrono::milliseconds from,
                    const std::function<bool(const std::string&)>& good,
                    std::chrono::milliseconds timeout) const {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (firstAfter(from, good)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

LatencySummary summarize(const std::vector<ProbeSample>& samples, std::chrono::milliseconds from,
                         std::chrono::milliseconds to) {
  LatencySummary summary;
  std::vector<double> latencies;
  for (const auto& sample : samples) {
    if (sample.at < from || sample.at >= to) continue;
    ++summary.count;
    latencies.push_back(static_cast<double>(sample.latency.count()));
    if (sample.reply.empty()) {
      ++summary.unanswered;
      continue;
    }
    auto action = sample.reply.substr(0, sample.reply.find(' '));
    if (action.rfind("action=", 0) == 0) action.erase(0, 7);
    ++summary.replies[action];
  }
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    summary.p50_ms = latencies[latencies.size() / 2];
    summary.max_ms = latencies.back();
  }
  return summary;
}

std::string describe(const LatencySummary& summary) {
  std::ostringstream out;
  out << summary.count << " replies, p50 " << summary.p50_ms << " ms, max " << summary.max_ms
      << " ms, unanswered " << summary.unanswered;
  for (const auto& [action, count] : summary.replies) out << ", " << action << " " << count;
  return out.str();
}

std::size_t raiseOpenFileLimit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<std::size_t>(limit.rlim_cur);
}

long residentKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::size_t openDescriptors(pid_t pid) {
  std::error_code ec;
  std::size_t count = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++count;
  }
  return count;
}

}  // namespace saslguard::testing
