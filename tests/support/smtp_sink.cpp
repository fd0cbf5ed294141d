// smtp_sink.cpp — see smtp_sink.hpp. smtp-sink must drop root privileges (-u) when started as
// root, so the dump directory is made writable for that user.
#include "support/smtp_sink.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {}  // namespace

bool SmtpSink::available() {
  return ::access(kProgram, X_OK) == 0;
}

unsigned short SmtpSink::freePort() {
  return freeLoopbackPort(SOCK_STREAM);
}

SmtpSink::SmtpSink(unsigned short port, std::vector<std::string> extra_arguments)
    : dump_directory_(directory_ / "dump"), port_(port == 0 ? freePort() : port) {
  namespace fs = std::filesystem;
  fs::create_directory(dump_directory_);
  // smtp-sink runs as nobody: it must reach and write the dump directory.
  fs::permissions(directory_.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::permissions(dump_directory_, fs::perms::all);

  std::vector<std::string> arguments{kProgram};
  if (::geteuid() == 0) arguments.insert(arguments.end(), {"-u", "nobody"});
  arguments.insert(arguments.end(), {"-d", (dump_directory_ / "%M.").string()});
  arguments.insert(arguments.end(), extra_arguments.begin(), extra_arguments.end());
  arguments.insert(arguments.end(), {"127.0.0.1:" + std::to_string(port_), "16"});
  pid_ = spawnLogged(std::move(arguments), directory_ / "smtp-sink.log");
  if (pid_ < 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!loopbackAccepts(port_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it died (port taken?): already reaped
      pid_ = -1;
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {  // it hangs
      stopChild(pid_, std::chrono::seconds(2));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

SmtpSink::~SmtpSink() {
  stopChild(pid_, std::chrono::seconds(5));
}

std::string SmtpSink::log() const {
  return readWholeFile(directory_ / "smtp-sink.log");
}

std::vector<std::string> SmtpSink::messages() const {
  namespace fs = std::filesystem;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  std::error_code ignored;
  for (const auto& entry : fs::directory_iterator(dump_directory_, ignored)) {
    if (entry.is_regular_file()) files.emplace_back(entry.last_write_time(), entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (const auto& [time, path] : files) out.push_back(readWholeFile(path));
  return out;
}

bool SmtpSink::waitForMessages(std::size_t count, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // A dump is complete once it ends with the empty line smtp-sink writes after the message.
    const auto dumped = messages();
    const auto complete = std::count_if(dumped.begin(), dumped.end(), [](const std::string& m) {
      return m.size() >= 2 && m.compare(m.size() - 2, 2, "\n\n") == 0;
    });
    if (static_cast<std::size_t>(complete) >= count) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace saslguard::testing
