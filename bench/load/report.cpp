// report.cpp — formats the run's numbers for people and for scripts (see report.hpp).
// Latencies are kept in nanoseconds and printed in microseconds with one decimal.
#include "load/report.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace saslguard::bench {

namespace {

double microseconds(uint64_t nanoseconds) {
  return static_cast<double>(nanoseconds) / 1000.0;
}

double requestsPerSecond(const RunReport& report) {
  return report.measured_s > 0 ? static_cast<double>(report.stats.answered()) / report.measured_s
                               : 0.0;
}

std::optional<double> cpuMicrosecondsPerRequest(std::optional<double> cpu_s, const RunReport& r) {
  if (!cpu_s || r.stats.answered() == 0) return std::nullopt;
  return *cpu_s * 1e6 / static_cast<double>(r.stats.answered());
}

}  // namespace

void printSummary(const RunReport& report) {
  const auto& s = report.stats;
  const auto& latency = s.latency;
  if (report.rate_per_s > 0)
    std::printf("open loop, %.0f req/s", report.rate_per_s);
  else
    std::printf("closed loop");
  std::printf(" over %u connection%s (%u thread%s) to %s; %.2f s measured after %.1f s warmup\n",
              report.connections, report.connections == 1 ? "" : "s", report.threads,
              report.threads == 1 ? "" : "s", report.target.c_str(), report.measured_s,
              report.warmup_s);
  std::printf("  requests   %llu answered, %.0f req/s\n",
              static_cast<unsigned long long>(s.answered()), requestsPerSecond(report));
  std::printf("  latency us p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              microseconds(latency.quantile(0.50)), microseconds(latency.quantile(0.90)),
              microseconds(latency.quantile(0.99)), microseconds(latency.quantile(0.999)),
              microseconds(latency.max()));
  std::printf("  actions    DUNNO %llu  HOLD %llu  REJECT %llu  DEFER %llu  other %llu\n",
              static_cast<unsigned long long>(s.dunno), static_cast<unsigned long long>(s.hold),
              static_cast<unsigned long long>(s.reject), static_cast<unsigned long long>(s.defer),
              static_cast<unsigned long long>(s.other));
  std::printf("  errors     connect %llu  closed %llu  timeout %llu  malformed %llu\n",
              static_cast<unsigned long long>(s.err_connect),
              static_cast<unsigned long long>(s.err_closed),
              static_cast<unsigned long long>(s.err_timeout),
              static_cast<unsigned long long>(s.err_malformed));
  if (report.rate_per_s > 0 && s.unsent > 0)
    std::printf("  behind     %llu scheduled requests never sent (the server did not keep up)\n",
                static_cast<unsigned long long>(s.unsent));
  if (report.rate_per_s > 0 && s.send_lag.count() > 0)
    std::printf(
        "  send lag   p50 %.1f  p99 %.1f  max %.1f us (generator timer lateness, not in latency)\n",
        microseconds(s.send_lag.quantile(0.5)), microseconds(s.send_lag.quantile(0.99)),
        microseconds(s.send_lag.max()));
  auto per_request = cpuMicrosecondsPerRequest(report.load_cpu_s, report);
  std::printf("  generator  CPU %.2f s (user %.2f s)", report.load_cpu_s, report.load_user_cpu_s);
  if (per_request) std::printf(", %.2f us/request", *per_request);
  std::printf("\n");
  // One thread cannot give more than one CPU second per second: near that, replies wait for the
  // generator and its own queueing shows up as server latency.
  if (report.measured_s > 0 && report.threads > 0) {
    double busy = report.load_cpu_s / (report.measured_s * report.threads);
    if (busy > 0.85)
      std::printf(
          "  WARNING    the generator was %.0f%% busy: it may be the bottleneck (--threads)\n",
          busy * 100);
  }
  if (report.server_cpu_s) {
    std::printf("  server     CPU %.2f s (user %.2f s)", *report.server_cpu_s,
                report.server_user_cpu_s);
    if (auto server = cpuMicrosecondsPerRequest(report.server_cpu_s, report))
      std::printf(", %.2f us/request", *server);
    std::printf("\n");
  }
}

void printResultLine(const RunReport& report) {
  const auto& s = report.stats;
  const auto& latency = s.latency;
  auto u = [](uint64_t value) { return static_cast<unsigned long long>(value); };
  std::printf(
      "RESULT mode=%s connections=%u rate=%.0f duration_s=%.3f requests=%llu rps=%.1f "
      "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
      "dunno=%llu hold=%llu reject=%llu defer=%llu other=%llu "
      "err_connect=%llu err_closed=%llu err_timeout=%llu err_malformed=%llu load_cpu_s=%.3f",
      report.rate_per_s > 0 ? "open" : "closed", report.connections, report.rate_per_s,
      report.measured_s, u(s.answered()), requestsPerSecond(report),
      microseconds(latency.quantile(0.50)), microseconds(latency.quantile(0.90)),
      microseconds(latency.quantile(0.99)), microseconds(latency.quantile(0.999)),
      microseconds(latency.max()), u(s.dunno), u(s.hold), u(s.reject), u(s.defer), u(s.other),
      u(s.err_connect), u(s.err_closed), u(s.err_timeout), u(s.err_malformed), report.load_cpu_s);
  // Extras after the fixed keys: CPU per request, open-loop backlog, the server's CPU if watched.
  auto per_request = cpuMicrosecondsPerRequest(report.load_cpu_s, report);
  if (report.rate_per_s > 0)
    std::printf(" send_lag_p99_us=%.1f", microseconds(s.send_lag.quantile(0.99)));
  std::printf(" load_user_cpu_s=%.3f load_cpu_us_per_req=%.2f unsent=%llu", report.load_user_cpu_s,
              per_request.value_or(0.0), u(s.unsent));
  if (report.server_cpu_s) {
    std::printf(" server_cpu_s=%.3f server_cpu_us_per_req=%.2f server_user_cpu_s=%.3f",
                *report.server_cpu_s,
                cpuMicrosecondsPerRequest(report.server_cpu_s, report).value_or(0.0),
                report.server_user_cpu_s);
  }
  std::printf("\n");
  std::fflush(stdout);
}

std::optional<CpuSeconds> processCpuSeconds(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');  // the command name may hold spaces; fields follow its ')'
  if (paren == std::string::npos || paren + 2 > text.size()) return std::nullopt;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {  // state is field 3; utime 14, stime 15
    if (index == 14) utime = std::stoull(field);
    if (index == 15) {
      stime = std::stoull(field);
      auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      return CpuSeconds{static_cast<double>(utime) / ticks, static_cast<double>(stime) / ticks};
    }
  }
  return std::nullopt;
}

CpuSeconds selfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return {seconds(usage.ru_utime), seconds(usage.ru_stime)};
}

}  // namespace saslguard::bench
