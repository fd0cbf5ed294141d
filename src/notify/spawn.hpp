// spawn.hpp — starts an external program the way the daemon's hooks and Postfix commands need:
// argv without a shell, an explicit environment, stdin from /dev/null, no inherited descriptors,
// its own process group (a timeout kills it and whatever it started).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.hpp"

namespace saslguard::notify {

// stdout_fd / stderr_fd: where the child writes (dup2'ed to 1 and 2); -1 sends it to /dev/null.
// The signal mask and dispositions are reset, since server threads block and ignore some. Returns
// the child's PID, which is also its process group; the caller reaps it.
Result<pid_t> spawnInOwnGroup(const std::vector<std::string>& argv,
                              const std::vector<std::string>& environment, int stdout_fd,
                              int stderr_fd);

}  // namespace saslguard::notify
