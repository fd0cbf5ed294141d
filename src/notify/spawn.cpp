// spawn.cpp — see spawn.hpp.
#include "notify/spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cstring>

namespace saslguard::notify {

namespace {

void redirect(posix_spawn_file_actions_t& actions, int from_fd, int to_fd) {
  if (from_fd < 0) {
    posix_spawn_file_actions_addopen(&actions, to_fd, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_adddup2(&actions, from_fd, to_fd);
  }
}

std::vector<char*> pointersTo(std::vector<std::string>& texts) {
  std::vector<char*> pointers;
  pointers.reserve(texts.size() + 1);
  for (auto& text : texts) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

Result<pid_t> spawnInOwnGroup(const std::vector<std::string>& argv,
                              const std::vector<std::string>& environment, int stdout_fd,
                              int stderr_fd) {
  if (argv.empty()) return fail("no command to run");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  redirect(actions, stdout_fd, 1);
  redirect(actions, stderr_fd, 2);
  // Sockets and files opened elsewhere in the daemon without O_CLOEXEC stay out of the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attributes, &signals);
  sigfillset(&signals);
  posix_spawnattr_setsigdefault(&attributes, &signals);

  std::vector<std::string> arguments = argv;
  std::vector<std::string> variables = environment;
  auto argument_pointers = pointersTo(arguments);
  auto environment_pointers = pointersTo(variables);
  pid_t pid = -1;
  const int spawn_error = ::posix_spawn(&pid, argument_pointers[0], &actions, &attributes,
                                        argument_pointers.data(), environment_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawn_error != 0) return fail(argv.front() + ": " + std::strerror(spawn_error));
  return pid;
}

}  // namespace saslguard::notify
