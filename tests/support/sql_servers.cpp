// sql_servers.cpp — see sql_servers.hpp.
#include "support/sql_servers.hpp"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace saslguard::testing {
namespace {

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
// The MariaDB test user's password has a space and a quote, so URL decoding and connect-string
// quoting are exercised.
constexpr const char* kMariadbPassword = "se cret'1";
constexpr const char* kMariadbPasswordInUrl = "se%20cret%271";

void becomeUser(uid_t uid, gid_t gid) {
  if (uid == static_cast<uid_t>(-1)) return;
  ::setgroups(0, nullptr);
  if (::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
}

pid_t spawn(const std::vector<std::string>& arguments, const std::string& log_path, uid_t uid,
            gid_t gid, int stdout_fd = -1) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setpgid(0, 0);
  const int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  const int log = log_path.empty() ? ::open("/dev/null", O_WRONLY)
                                   : ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ::dup2(stdout_fd >= 0 ? stdout_fd : log, 1);
  ::dup2(log, 2);
  becomeUser(uid, gid);
  std::vector<char*> argv;
  for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

bool waitExited(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string makeTempDir(const char* prefix) {
  std::string pattern = std::string("/tmp/") + prefix + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return {};
  ::chmod(pattern.c_str(), 0755);
  return pattern;
}

}  // namespace

unsigned short freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

int runProgram(const std::vector<std::string>& arguments, std::string* output, uid_t as_user,
               gid_t as_group) {
  int pipe_fds[2] = {-1, -1};
  if (output != nullptr && ::pipe(pipe_fds) != 0) return -1;
  const pid_t pid = spawn(arguments, "", as_user, as_group, output ? pipe_fds[1] : -1);
  if (output != nullptr) {
    ::close(pipe_fds[1]);
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) output->append(buffer, n);
    ::close(pipe_fds[0]);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

SqlServer::SqlServer() : port_(freeLoopbackPort()) {}

SqlServer::~SqlServer() = default;

bool SqlServer::start() {
  if (pid_ > 0) return true;
  if (!initialised_) {
    if (!initialise()) return false;
    initialised_ = true;
  }
  // After a kill, the old server's children may hold on a moment: retry for a few seconds.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    pid_ = spawn(serverCommand(), (dir_ / "server.log").string(), uid_, gid_);
    const auto started = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - started < std::chrono::seconds(15)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      if (answers()) {
        if (!started_once_) {
          started_once_ = true;
          if (!afterFirstStart()) return false;
        }
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) {
      kill();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  error_ = "the server did not start; see " + (dir_ / "server.log").string();
  return false;
}

void SqlServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  if (!waitExited(pid_, std::chrono::seconds(20))) {
    ::kill(pid_, SIGKILL);
    waitExited(pid_, std::chrono::seconds(5));
  }
  pid_ = -1;
}

void SqlServer::kill() {
  if (pid_ <= 0) return;
  // The whole process group (the server leads it): PostgreSQL's backends outlive a killed
  // postmaster long enough to commit another batch, which a crashed host would not.
  ::kill(-pid_, SIGKILL);
  waitExited(pid_, std::chrono::seconds(5));
  pid_ = -1;
}

// --- MariaDB -------------------------------------------------------------------------------

bool MariadbServer::available() {
  return ::access("/usr/sbin/mariadbd", X_OK) == 0 && ::access("/usr/bin/mariadb", X_OK) == 0 &&
         ::access("/usr/bin/mariadb-install-db", X_OK) == 0;
}

MariadbServer::~MariadbServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

bool MariadbServer::initialise() {
  dir_ = makeTempDir("saslguard-mariadb");
  if (dir_.empty()) return false;
  std::vector<std::string> install{"/usr/bin/mariadb-install-db", "--no-defaults",
                                   "--datadir=" + (dir_ / "data").string(),
                                   "--auth-root-authentication-method=normal", "--skip-test-db"};
  if (::geteuid() == 0) install.push_back("--user=root");
  // Two bootstraps at once (ctest runs test processes in parallel) make one of them fail: take
  // turns, and try a second time with a clean directory.
  const int lock = ::open("/tmp/saslguard-mariadb-install.lock", O_RDWR | O_CREAT, 0666);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  std::string output;
  int code = runProgram(install, &output);
  if (code != 0) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_ / "data", ignored);
    output.clear();
    code = runProgram(install, &output);
  }
  if (lock >= 0) ::close(lock);
  if (code != 0) {
    error_ = "mariadb-install-db failed: " + output;
    return false;
  }
  return true;
}

std::vector<std::string> MariadbServer::serverCommand() const {
  std::vector<std::string> command{"/usr/sbin/mariadbd",
                                   "--no-defaults",
                                   "--datadir=" + (dir_ / "data").string(),
                                   "--socket=" + (dir_ / "mysqld.sock").string(),
                                   "--port=" + std::to_string(port_),
                                   "--bind-address=127.0.0.1",
                                   "--pid-file=" + (dir_ / "mysqld.pid").string(),
                                   "--log-error=" + (dir_ / "error.log").string(),
                                   "--skip-name-resolve",
                                   "--innodb-buffer-pool-size=32M",
                                   "--innodb-log-file-size=8M",
                                   "--innodb-flush-log-at-trx-commit=2"};
  if (::geteuid() == 0) command.push_back("--user=root");
  return command;
}

bool MariadbServer::answers() {
  std::string output;
  return runProgram({"/usr/bin/mariadb-admin", "--no-defaults",
                     "--socket=" + (dir_ / "mysqld.sock").string(), "-uroot", "ping"},
                    &output) == 0 &&
         output.find("alive") != std::string::npos;
}

bool MariadbServer::afterFirstStart() {
  std::string output;
  const int code = runProgram(
      {"/usr/bin/mariadb", "--no-defaults", "--socket=" + (dir_ / "mysqld.sock").string(), "-uroot",
       "-e",
       std::string("CREATE DATABASE policyd; CREATE USER 'sg'@'127.0.0.1' IDENTIFIED BY '") +
           "se cret\\'1" + "'; GRANT ALL ON policyd.* TO 'sg'@'127.0.0.1';"},
      &output);
  if (code != 0) error_ = "creating the database failed: " + output;
  return code == 0;
}

std::string MariadbServer::url() const {
  return "mysql://sg:" + std::string(kMariadbPasswordInUrl) +
         "@127.0.0.1:" + std::to_string(port_) + "/policyd";
}

std::string MariadbServer::urlWithoutPassword() const {
  return "mysql://sg@127.0.0.1:" + std::to_string(port_) + "/policyd";
}

std::string MariadbServer::password() const {
  return kMariadbPassword;
}

std::string MariadbServer::sql(const std::string& statement) {
  std::string output;
  runProgram({"/usr/bin/mariadb", "--no-defaults", "--socket=" + (dir_ / "mysqld.sock").string(),
              "-uroot", "-N", "-B", "policyd", "-e", statement},
             &output);
  return output;
}

// --- PostgreSQL ----------------------------------------------------------------------------

bool PostgresServer::available() {
  return ::access((std::string(kPgBin) + "/postgres").c_str(), X_OK) == 0 &&
         ::access((std::string(kPgBin) + "/initdb").c_str(), X_OK) == 0 &&
         ::access("/usr/bin/psql", X_OK) == 0;
}

PostgresServer::PostgresServer() {
  if (::geteuid() == 0) {  // initdb and postgres refuse to run as root
    if (const auto* pw = ::getpwnam("postgres")) {
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
    }
  }
}

PostgresServer::~PostgresServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

bool PostgresServer::initialise() {
  dir_ = makeTempDir("saslguard-pg");
  if (dir_.empty()) return false;
  if (uid_ != static_cast<uid_t>(-1) && ::chown(dir_.c_str(), uid_, gid_) != 0) return false;
  std::string output;
  const int code =
      runProgram({std::string(kPgBin) + "/initdb", "-D", (dir_ / "data").string(), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"},
                 &output, uid_, gid_);
  if (code != 0) error_ = "initdb failed: " + output;
  return code == 0;
}

std::vector<std::string> PostgresServer::serverCommand() const {
  return {std::string(kPgBin) + "/postgres",
          "-D",
          (dir_ / "data").string(),
          "-c",
          "listen_addresses=127.0.0.1",
          "-p",
          std::to_string(port_),
          "-k",
          dir_.string(),
          "-c",
          "fsync=off",
          "-c",
          "full_page_writes=off"};
}

bool PostgresServer::answers() {
  std::string output;
  return runProgram({"/usr/bin/psql", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U",
                     "postgres", "-d", "postgres", "-Atc", "SELECT 1"},
                    &output) == 0 &&
         output.find('1') != std::string::npos;
}

bool PostgresServer::afterFirstStart() {
  std::string output;
  const int code = runProgram({"/usr/bin/psql", "-h", "127.0.0.1", "-p", std::to_string(port_),
                               "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE policyd"},
                              &output);
  if (code != 0) error_ = "creating the database failed: " + output;
  return code == 0;
}

std::string PostgresServer::url() const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/policyd";
}

std::string PostgresServer::sql(const std::string& statement) {
  std::string output;
  runProgram({"/usr/bin/psql", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres",
              "-d", "policyd", "-AtF", "\t", "-c", statement},
             &output);
  return output;
}

}  // namespace saslguard::testing
