// daemon_process.cpp — see daemon_process.hpp.
#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace saslguard::testing {
namespace {

std::vector<char*> argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

pid_t spawn(std::vector<std::string> args, const std::string& output_path,
            const std::vector<std::string>& extra_environment) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int fd = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  const int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  for (const auto& entry : extra_environment) ::putenv(const_cast<char*>(strdup(entry.c_str())));
  auto arguments = argv(args);
  ::execv(arguments[0], arguments.data());
  ::_exit(127);
}

int decodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// The port of the first "a.b.c.d:port" in the ready line's "listening on ...; " list. Other
// lines say "listening on" too (the admin API's), so the search starts at the ready line.
unsigned short firstIpv4Port(const std::string& log) {
  const auto ready = log.find(" ready: ");
  if (ready == std::string::npos) return 0;
  const auto start = log.find("listening on ", ready);
  if (start == std::string::npos) return 0;
  const auto end = log.find(';', start);
  std::istringstream list(log.substr(start + 13, end - start - 13));
  std::string address;
  while (std::getline(list, address, ',')) {
    while (!address.empty() && address.front() == ' ') address.erase(0, 1);
    const auto colon = address.rfind(':');
    if (address.empty() || address.front() == '[' || address.rfind("unix:", 0) == 0 ||
        colon == std::string::npos) {
      continue;
    }
    return static_cast<unsigned short>(std::stoi(address.substr(colon + 1)));
  }
  return 0;
}

unsigned short adminApiPort(const std::string& log) {
  const std::string marker = "admin API on ";
  const auto start = log.find(marker);
  if (start == std::string::npos) return 0;
  const auto end = log.find_first_of(";,\n", start);
  const auto address = log.substr(start + marker.size(), end - start - marker.size());
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  return static_cast<unsigned short>(std::stoi(address.substr(colon + 1)));
}

}  // namespace

RunResult runSaslguard(const std::vector<std::string>& arguments,
                       const std::vector<std::string>& extra_environment) {
  std::vector<std::string> args{SASLGUARD_BINARY};
  args.insert(args.end(), arguments.begin(), arguments.end());
  char pattern[] = "/tmp/saslguard-run-XXXXXX";
  const int fd = ::mkstemp(pattern);
  ::close(fd);
  const pid_t pid = spawn(args, pattern, extra_environment);
  int status = 0;
  ::waitpid(pid, &status, 0);
  RunResult result{decodeStatus(status), readWholeFile(pattern)};
  ::unlink(pattern);
  return result;
}

DaemonProcess::DaemonProcess(std::vector<std::string> serve_arguments,
                             std::filesystem::path log_path,
                             std::vector<std::string> extra_environment)
    : log_path_(std::move(log_path)) {
  std::vector<std::string> args{SASLGUARD_BINARY, "serve"};
  args.insert(args.end(), serve_arguments.begin(), serve_arguments.end());
  pid_ = spawn(args, log_path_.string(), extra_environment);
  ready_ = waitForLog(" ready: ", std::chrono::seconds(15));
  if (!ready_) return;
  port_ = firstIpv4Port(log());
  admin_port_ = adminApiPort(log());
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string DaemonProcess::log() const {
  return readWholeFile(log_path_);
}

bool DaemonProcess::waitForLog(const std::string& text, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (log().find(text) != std::string::npos) return true;
    int status = 0;
    if (!status_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      const_cast<DaemonProcess*>(this)->status_ = decodeStatus(status);
      return log().find(text) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void DaemonProcess::signal(int number) const {
  if (pid_ > 0 && !status_) ::kill(pid_, number);
}

int DaemonProcess::wait(std::chrono::milliseconds timeout) {
  if (status_) return *status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = decodeStatus(status);
      return *status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

bool DaemonProcess::running() {
  if (status_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = decodeStatus(status);
    return false;
  }
  return true;
}

std::optional<PolicyClient> PolicyClient::connectTcp(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  return PolicyClient(fd);
}

std::optional<PolicyClient> PolicyClient::connectUnix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  return PolicyClient(fd);
}

PolicyClient::PolicyClient(PolicyClient&& other) noexcept
    : fd_(other.fd_), buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

PolicyClient::~PolicyClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool PolicyClient::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<std::string> PolicyClient::readReply(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto end = buffer_.find("\n\n");
    if (end != std::string::npos) {
      auto reply = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      return reply;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char chunk[65536];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> PolicyClient::ask(const std::string& request) {
  if (!send(request)) return std::nullopt;
  return readReply();
}

bool PolicyClient::closedByPeer(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char chunk[256];
  return ::recv(fd_, chunk, sizeof chunk, MSG_PEEK) == 0;
}

std::string postfixRequest(const std::string& account, const std::string& client,
                           const std::string& state) {
  return "request=smtpd_access_policy\nprotocol_state=" + state +
         "\nprotocol_name=ESMTP\nclient_address=" + client +
         "\nclient_name=unknown\nclient_port=60690\nreverse_client_name=unknown\n"
         "server_address=127.0.0.1\nserver_port=587\nhelo_name=client.example\n"
         "sender=" +
         account +
         "\nrecipient=someone@remote.example\nrecipient_count=0\n"
         "queue_id=\ninstance=666a.6b0259ed.7d0d7.0\nsize=0\netrn_domain=\nstress=\n"
         "sasl_method=" +
         std::string(account.empty() ? "" : "PLAIN") + "\nsasl_username=" + account +
         "\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
         "ccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\n"
         "encryption_keysize=0\npolicy_context=recipient\n\n";
}

}  // namespace saslguard::testing
