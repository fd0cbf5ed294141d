// sql_servers.hpp — throwaway MariaDB and PostgreSQL servers for tests: a fresh data directory
// in /tmp, a free loopback port, started as child processes and stopped or killed by PID
// (recipes from reference/environment.md §2.2 and §2.3). The database `policyd` exists, with a
// password user for MariaDB; sql() runs a statement as the administrator and returns its output.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace saslguard::testing {

// A loopback TCP port nothing listens on right now.
unsigned short freeLoopbackPort();

// Runs a program (no shell) and returns its exit code; its stdout goes to `output` if given.
int runProgram(const std::vector<std::string>& arguments, std::string* output = nullptr,
               uid_t as_user = static_cast<uid_t>(-1), gid_t as_group = static_cast<gid_t>(-1));

class SqlServer {
 public:
  virtual ~SqlServer();
  SqlServer(const SqlServer&) = delete;
  SqlServer& operator=(const SqlServer&) = delete;

  // Initialises the data directory (first call) and starts the server; waits until it answers.
  bool start();
  void stop();  // SIGTERM, then wait (SIGKILL after 20 s)
  void kill();  // SIGKILL, as a crash
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }  // for SIGSTOP / SIGCONT; stop() and kill() reap it
  unsigned short port() const { return port_; }
  const std::string& error() const { return error_; }
  // eventlog.url for the test user, with its password (for the library), and without it plus
  // the password (for eventlog.url and eventlog.password_file).
  virtual std::string url() const = 0;
  virtual std::string urlWithoutPassword() const { return url(); }
  virtual std::string password() const { return {}; }
  // Runs one statement in `policyd` as the administrator; its rows, tab-separated, one a line.
  virtual std::string sql(const std::string& statement) = 0;

 protected:
  SqlServer();
  virtual bool initialise() = 0;
  virtual std::vector<std::string> serverCommand() const = 0;
  virtual bool answers() = 0;
  virtual bool afterFirstStart() { return true; }

  std::filesystem::path dir_;
  unsigned short port_ = 0;
  uid_t uid_ = static_cast<uid_t>(-1);
  gid_t gid_ = static_cast<gid_t>(-1);
  std::string error_;

 private:
  pid_t pid_ = -1;
  bool initialised_ = false;
  bool started_once_ = false;
};

class MariadbServer final : public SqlServer {
 public:
  static bool available();
  MariadbServer() = default;
  ~MariadbServer() override;
  std::string url() const override;
  std::string urlWithoutPassword() const override;
  std::string password() const override;
  std::string sql(const std::string& statement) override;

 private:
  bool initialise() override;
  std::vector<std::string> serverCommand() const override;
  bool answers() override;
  bool afterFirstStart() override;
};

class PostgresServer final : public SqlServer {
 public:
  static bool available();
  PostgresServer();
  ~PostgresServer() override;
  std::string url() const override;
  std::string sql(const std::string& statement) override;

 private:
  bool initialise() override;
  std::vector<std::string> serverCommand() const override;
  bool answers() override;
  bool afterFirstStart() override;
};

}  // namespace saslguard::testing
