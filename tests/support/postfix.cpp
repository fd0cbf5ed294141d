// postfix.cpp — see postfix.hpp. Every Postfix program gets `-c CONF`; nothing under /etc/postfix
// is read or written. Dovecot stays in the foreground and is stopped by its PID; the Postfix master
// daemonizes, so it is stopped with `postfix -c CONF stop` and then waited for by its pid file.
#include "support/postfix.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace saslguard::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kPostfix = "/usr/sbin/postfix";
constexpr const char* kPostqueue = "/usr/sbin/postqueue";
constexpr const char* kPostsuper = "/usr/sbin/postsuper";
constexpr const char* kDovecot = "/usr/sbin/dovecot";
constexpr const char* kSwaks = "/usr/bin/swaks";

bool processAlive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

void chown(const fs::path& path, const char* user) {
  const auto* pw = ::getpwnam(user);
  if (pw == nullptr) throw std::runtime_error(std::string("no user ") + user);
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error("chown " + path.string());
  }
}

}  // namespace

ProgramResult runCaptured(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  char pattern[] = "/tmp/saslguard-out-XXXXXX";
  const int fd = ::mkstemp(pattern);
  if (fd < 0) return {};
  std::vector<std::string> arguments = argv;
  std::vector<char*> pointers;
  for (auto& argument : arguments) pointers.push_back(argument.data());
  pointers.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fd, 1);
  posix_spawn_file_actions_adddup2(&actions, fd, 2);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, pointers[0], &actions, nullptr, pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  ProgramResult result;
  if (error == 0) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  result.output = readWholeFile(pattern);
  ::unlink(pattern);
  return result;
}

std::string SmtpOutcome::queueId() const {
  static const std::regex queued(R"(250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+))");
  std::smatch match;
  return std::regex_search(transcript, match, queued) ? match[1].str() : std::string();
}

std::string SmtpOutcome::firstReply(char status_class) const {
  std::istringstream lines(transcript);
  for (std::string line; std::getline(lines, line);) {
    // swaks marks server lines "<-  " (success) and "<** " (errors).
    if (line.size() > 4 && line[0] == '<' && line[4] == status_class) return line.substr(4);
  }
  return {};
}

bool PostfixInstance::available() {
  return ::geteuid() == 0 && ::access(kPostfix, X_OK) == 0 && ::access(kDovecot, X_OK) == 0 &&
         ::access(kSwaks, X_OK) == 0 && SmtpSink::available();
}

PostfixInstance::PostfixInstance(unsigned short policy_port, std::vector<PostfixAccount> accounts) {
  // Postfix and Dovecot users must reach the files below the temporary directory.
  fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
  sink_ = std::make_unique<SmtpSink>();
  if (!sink_->running()) throw std::runtime_error("smtp-sink did not start: " + sink_->log());
  submission_port_ = freeLoopbackPort();
  xclient_port_ = freeLoopbackPort();
  while (xclient_port_ == submission_port_) xclient_port_ = freeLoopbackPort();
  writeFiles(policy_port, accounts);

  const auto conf = configDirectory();
  // `check` creates the queue tree with Postfix's ownerships.
  if (auto check = runCaptured({kPostfix, "-c", conf, "check"}); check.exit_code != 0) {
    throw std::runtime_error("postfix check failed: " + check.output);
  }
  dovecot_pid_ = spawnLogged({kDovecot, "-F", "-c", (dir_ / "dovecot" / "dovecot.conf").string()},
                             dir_ / "dovecot" / "stdout.log");
  const auto auth_socket = dir_ / "queue" / "private" / "auth";
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!fs::exists(auth_socket)) {
    if (std::chrono::steady_clock::now() >= deadline || !processAlive(dovecot_pid_)) {
      stop();
      throw std::runtime_error("dovecot did not start: " +
                               readWholeFile(dir_ / "dovecot" / "stdout.log") + dovecotLog());
    }
    std::this_thread::sleep_for(10ms);
  }
  if (auto start = runCaptured({kPostfix, "-c", conf, "start"}); start.exit_code != 0) {
    stop();
    throw std::runtime_error("postfix start failed: " + start.output + maillog());
  }
  started_ = true;
  const auto pid_file = dir_ / "queue" / "pid" / "master.pid";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(pid_file);
    if (in >> master_pid_ && master_pid_ > 0 && loopbackAccepts(submission_port_) &&
        loopbackAccepts(xclient_port_)) {
      return;
    }
    std::this_thread::sleep_for(20ms);
  }
  const auto log = logs();
  stop();
  throw std::runtime_error("postfix did not start listening: " + log);
}

PostfixInstance::~PostfixInstance() {
  stop();
}

void PostfixInstance::stop() {
  if (started_) {
    runCaptured({kPostfix, "-c", configDirectory(), "stop"}, 20s);
    started_ = false;
  }
  if (master_pid_ > 0) {
    // `postfix stop` signals the master and returns; it exits once its children have. Still
    // there after 10 s: it is killed (its PID came from its own pid file).
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (processAlive(master_pid_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    if (processAlive(master_pid_)) ::kill(master_pid_, SIGKILL);
    master_pid_ = -1;
  }
  stopChild(dovecot_pid_, 5s);
}

void PostfixInstance::writeFiles(unsigned short policy_port,
                                 const std::vector<PostfixAccount>& accounts) {
  const auto root = dir_.path().string();
  fs::create_directories(dir_ / "conf");
  fs::create_directories(dir_ / "queue");
  fs::create_directories(dir_ / "data");
  fs::create_directories(dir_ / "log");
  fs::create_directories(dir_ / "dovecot" / "run");
  fs::create_directories(dir_ / "dovecot" / "state");
  chown(dir_ / "data", "postfix");

  const auto policy = "inet:127.0.0.1:" + std::to_string(policy_port);
  std::ofstream(dir_ / "conf" / "main.cf")
      << "compatibility_level = 3.6\n"
         "queue_directory = "
      << root << "/queue\ndata_directory = " << root
      << "/data\n"
         "maillog_file = "
      << root << "/log/maillog\nmaillog_file_prefixes = " << root
      << "\n"
         "myhostname = mx.e2e.test\nmydomain = e2e.test\nmydestination =\n"
         "inet_protocols = ipv4\ninet_interfaces = loopback-only\nmynetworks = 127.0.0.0/8\n"
         "relayhost = [127.0.0.1]:"
      << sink_->port()
      << "\n"
         "smtp_dns_support_level = disabled\nsmtpd_peername_lookup = no\n"
         "alias_maps =\nalias_database =\nlocal_recipient_maps =\n"
         "smtputf8_enable = no\nbiff = no\n"
         "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n"
         "smtpd_sasl_path = private/auth\n"
         // One request per policy connection: a restarted saslguard never meets a connection its
         // previous process closed, which Postfix would retry only after a second.
         "smtpd_policy_service_request_limit = 1\n"
         "saslguard_sender = check_policy_service { "
      << policy
      << ", policy_context=sender, timeout=10s }\n"
         "saslguard_eod = check_policy_service { "
      << policy
      << ", policy_context=end_of_data, timeout=10s }\n"
         "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
         "reject_unauth_destination\n"
         "smtpd_sender_restrictions = $saslguard_sender\n"
         "smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject\n"
         "smtpd_end_of_data_restrictions = $saslguard_eod\n"
         // Released mail is scheduled at once by postqueue -i; the rest retries quickly.
         "queue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n";

  std::ofstream(dir_ / "conf" / "master.cf") << "127.0.0.1:" << submission_port_
                                             << " inet n - n - - smtpd\n"
                                                "  -o syslog_name=postfix/submission\n"
                                                "127.0.0.1:"
                                             << xclient_port_
                                             << " inet n - n - - smtpd\n"
                                                "  -o syslog_name=postfix/xclient\n"
                                                "  -o smtpd_authorized_xclient_hosts=127.0.0.0/8\n"
                                                "pickup unix n - n 60 1 pickup\n"
                                                "cleanup unix n - n - 0 cleanup\n"
                                                "qmgr unix n - n 300 1 qmgr\n"
                                                "rewrite unix - - n - - trivial-rewrite\n"
                                                "bounce unix - - n - 0 bounce\n"
                                                "defer unix - - n - 0 bounce\n"
                                                "trace unix - - n - 0 bounce\n"
                                                "verify unix - - n - 1 verify\n"
                                                "flush unix n - n 1000? 0 flush\n"
                                                "proxymap unix - - n - - proxymap\n"
                                                "smtp unix - - n - - smtp\n"
                                                "relay unix - - n - - smtp\n"
                                                "showq unix n - n - - showq\n"
                                                "error unix - - n - - error\n"
                                                "retry unix - - n - - error\n"
                                                "discard unix - - n - - discard\n"
                                                "local unix - n n - - local\n"
                                                "anvil unix - - n - 1 anvil\n"
                                                "scache unix - - n - 1 scache\n"
                                                "postlog unix-dgram n - n - 1 postlogd\n";

  const auto dovecot = dir_ / "dovecot";
  {
    std::ofstream users(dovecot / "users");
    for (const auto& account : accounts) {
      users << account.login << ":{PLAIN}" << account.password << "\n";
    }
  }
  fs::permissions(dovecot / "users", fs::perms::owner_read | fs::perms::owner_write |
                                         fs::perms::group_read | fs::perms::others_read);
  std::ofstream(dovecot / "dovecot.conf")
      << "protocols =\nbase_dir = " << (dovecot / "run").string()
      << "\nstate_dir = " << (dovecot / "state").string()
      << "\nlog_path = " << (dovecot / "dovecot.log").string()
      << "\nssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n"
         "auth_failure_delay = 0\n"
         "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u "
      << (dovecot / "users").string()
      << "\n}\n"
         "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n"
         "service auth {\n  unix_listener "
      << (dir_ / "queue" / "private" / "auth").string()
      << " {\n    mode = 0660\n    user = postfix\n    group = postfix\n  }\n}\n"
         "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n";
}

SmtpOutcome PostfixInstance::submit(const Submission& submission) const {
  std::string recipients;
  for (const auto& to : submission.to) recipients += (recipients.empty() ? "" : ",") + to;
  const bool xclient = !submission.xclient_address.empty();
  const bool trusted = xclient || submission.trusted_port;
  std::vector<std::string> argv{kSwaks,
                                "--server",
                                "127.0.0.1",
                                "--port",
                                std::to_string(trusted ? xclient_port_ : submission_port_),
                                "--helo",
                                "client.e2e.test",
                                "--from",
                                submission.from,
                                "--to",
                                recipients,
                                "--header",
                                "Subject: " + submission.subject,
                                "--body",
                                "e2e body " + submission.subject,
                                "--timeout",
                                "20"};
  if (!submission.user.empty()) {
    argv.insert(argv.end(), {"--auth", "PLAIN", "--auth-user", submission.user, "--auth-password",
                             submission.password});
  }
  if (xclient) {
    argv.insert(argv.end(),
                {"--xclient-addr", submission.xclient_address, "--xclient-name", "[UNAVAILABLE]"});
    if (!submission.xclient_login.empty()) {
      argv.insert(argv.end(), {"--xclient-login", submission.xclient_login});
    }
  }
  auto result = runCaptured(argv, 60s);
  return SmtpOutcome{result.exit_code, std::move(result.output)};
}

std::vector<std::string> PostfixInstance::queueJson() const {
  auto result = runCaptured({kPostqueue, "-c", configDirectory(), "-j"});
  std::vector<std::string> lines;
  std::istringstream in(result.output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.front() == '{') lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> PostfixInstance::queueIds(const std::string& queue_name) const {
  static const std::regex id(R"re("queue_id": *"([0-9A-Za-z]+)")re");
  std::vector<std::string> ids;
  for (const auto& line : queueJson()) {
    std::smatch match;
    if (line.find("\"queue_name\": \"" + queue_name + "\"") != std::string::npos &&
        std::regex_search(line, match, id)) {
      ids.push_back(match[1].str());
    }
  }
  return ids;
}

bool PostfixInstance::waitForQueueIds(const std::string& queue_name, std::size_t count,
                                      std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (queueIds(queue_name).size() != count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

void PostfixInstance::deleteAllMail() const {
  runCaptured({kPostsuper, "-c", configDirectory(), "-d", "ALL"});
}

std::size_t PostfixInstance::deliveredWith(const std::string& marker) const {
  std::size_t count = 0;
  for (const auto& message : sink_->messages()) {
    if (message.find(marker) != std::string::npos) ++count;
  }
  return count;
}

bool PostfixInstance::waitForDelivered(const std::string& marker, std::size_t count,
                                       std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (deliveredWith(marker) < count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::string PostfixInstance::maillog() const {
  return readWholeFile(dir_ / "log" / "maillog");
}

std::string PostfixInstance::dovecotLog() const {
  return readWholeFile(dir_ / "dovecot" / "dovecot.log");
}

std::string PostfixInstance::logs() const {
  return "--- maillog\n" + maillog() + "--- dovecot\n" + dovecotLog() + "--- smtp-sink\n" +
         sink_->log();
}

}  // namespace saslguard::testing
