// systemd_test.cpp — the daemon's service-manager protocol, checked the way systemd sees it: a
// unix datagram socket named by NOTIFY_SOCKET receives READY, WATCHDOG, RELOADING and STOPPING.
// Also checks the shipped unit file with systemd-analyze when that tool is installed.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~NotifySocket() { ::close(fd_); }
  bool bound() const { return bound_; }

  // Collects messages until one contains `wanted` or the timeout passes.
  bool waitFor(const std::string& wanted, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[4096];
      const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) continue;
      const std::string message(buffer, static_cast<std::size_t>(n));
      received_.push_back(message);
      if (message.find(wanted) != std::string::npos) return true;
    }
    return false;
  }
  std::string all() const {
    std::string out;
    for (const auto& m : received_) out += "[" + m + "] ";
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
  std::vector<std::string> received_;
};

TEST(Systemd, NotifiesReadyWatchdogReloadingAndStopping) {
  TempDir dir;
  const auto socketPath = (dir / "notify.sock").string();
  NotifySocket notify(socketPath);
  ASSERT_TRUE(notify.bound());
  DaemonProcess process({"--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string()},
                        dir / "daemon.log",
                        {"NOTIFY_SOCKET=" + socketPath, "WATCHDOG_USEC=200000"});
  ASSERT_TRUE(process.ready()) << process.log();
  ASSERT_TRUE(notify.waitFor("READY=1", 5s)) << notify.all();
  EXPECT_TRUE(notify.waitFor("STATUS=listening on 127.0.0.1:", 1ms) ||
              notify.all().find("STATUS=listening on 127.0.0.1:") != std::string::npos)
      << notify.all();
  EXPECT_TRUE(notify.waitFor("WATCHDOG=1", 2s)) << notify.all();
  EXPECT_TRUE(notify.waitFor("WATCHDOG=1", 2s)) << "the watchdog keeps being pinged";
  process.signal(SIGHUP);
  EXPECT_TRUE(notify.waitFor("RELOADING=1", 5s)) << notify.all();
  EXPECT_TRUE(notify.waitFor("READY=1", 5s)) << notify.all();
  process.signal(SIGTERM);
  EXPECT_TRUE(notify.waitFor("STOPPING=1", 5s)) << notify.all();
  EXPECT_EQ(process.wait(), 0) << process.log();
}

TEST(Systemd, ShippedUnitFileVerifies) {
  if (::access("/usr/bin/systemd-analyze", X_OK) != 0)
    GTEST_SKIP() << "systemd-analyze not installed";
  TempDir dir;
  std::ifstream in(std::string(SASLGUARD_SOURCE_DIR) + "/contrib/saslguard.service");
  std::stringstream unit;
  unit << in.rdbuf();
  // Point the unit at the binary under test, then let systemd judge every directive.
  const auto text = std::regex_replace(unit.str(), std::regex("/usr/local/bin/saslguard"),
                                       std::string(SASLGUARD_BINARY));
  std::ofstream(dir / "saslguard.service") << text;
  const auto command = "systemd-analyze verify " + (dir / "saslguard.service").string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output.find("Unknown"), std::string::npos) << output;
}

}  // namespace
}  // namespace saslguard::testing
