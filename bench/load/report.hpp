// report.hpp — what saslguard-load prints at the end: a short human summary and the final
// machine-readable "RESULT key=value ..." line that scripts (bench/run, smoke_test.sh) parse.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "load/worker.hpp"

namespace saslguard::bench {

struct RunReport {
  std::string target;
  uint32_t connections = 0;
  uint32_t threads = 0;
  double rate_per_s = 0;  // 0: closed loop
  double warmup_s = 0;
  double measured_s = 0;  // the measured window, shorter if --requests ended the run
  LoadStats stats;
  double load_cpu_s = 0;       // this process, user + system, over the measured window
  double load_user_cpu_s = 0;  // its user part: the generator's own code, not the kernel's TCP
  std::optional<double> server_cpu_s;  // --server-pid, same window
  double server_user_cpu_s = 0;
};

void printSummary(const RunReport& report);
void printResultLine(const RunReport& report);

struct CpuSeconds {
  double user = 0;
  double system = 0;
};
// CPU seconds of a process from /proc/<pid>/stat, or nothing if unreadable.
std::optional<CpuSeconds> processCpuSeconds(int pid);
// CPU seconds of this process, all threads (getrusage).
CpuSeconds selfCpuSeconds();

}  // namespace saslguard::bench
