// slapd.cpp — see slapd.hpp. slapd runs in the foreground (-d 0) as our child, so its PID is
// the one we forked; openssl and slapadd run to completion through the shell first.
#include "support/slapd.hpp"

#include "support/child_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace saslguard::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kStartAttempts = 5;

void writeFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// Runs a shell command with its output appended to `log`; throws with the log when it fails.
void run(const std::string& command, const fs::path& log) {
  const auto full = command + " >>" + log.string() + " 2>&1";
  if (std::system(full.c_str()) != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    throw std::runtime_error("failed: " + command + "\n" + text.str());
  }
}

// ldapi:// URLs carry the socket path percent-encoded in the host part.
std::string percentEncodedPath(const std::string& path) {
  std::string encoded;
  for (const char c : path) encoded += c == '/' ? std::string("%2F") : std::string(1, c);
  return encoded;
}

}  // namespace

unsigned short freeTcpPort() {
  return freeLoopbackPort(SOCK_STREAM);
}

std::string Slapd::sampleLdif() {
  return R"(dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: alice
cn: Alice
sn: A
mail: alice@example.test
mailLocalAddress: alice.alias@example.test
mailLocalAddress: sales@example.test
mailRoutingAddress: alice@example.test

dn: uid=bob,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: bob
cn: Bob
sn: B
mail: bob@example.test
mailLocalAddress: team@example.test

dn: uid=Carol,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: Carol
cn: Carol
sn: C
mail: carol@example.test
mailLocalAddress: team@example.test

dn: cn=Juergen,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid:: asO8cmdlbg==
cn: Juergen
sn: J
mail: juergen@example.test

dn: cn=Weird,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: we*ird(uid)\name
cn: Weird
sn: W
mail: weird@example.test
)";
}

Slapd::Slapd(SlapdOptions options) : options_(std::move(options)) {
  if (options_.ldif.empty()) options_.ldif = sampleLdif();
  fs::create_directories(dir_ / "db");
  if (options_.tls) writeCertificates();
  writeConfiguration();
  writeFile(dir_ / "data.ldif", options_.ldif);
  run("slapadd -q -f " + (dir_ / "slapd.conf").string() + " -l " + (dir_ / "data.ldif").string(),
      dir_ / "slapadd.log");
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    port_ = freeTcpPort();
    tls_port_ = options_.tls ? freeTcpPort() : 0;
    if (launch()) return;
  }
  throw std::runtime_error("slapd did not start; its log:\n" + log());
}

Slapd::~Slapd() {
  stop();
}

std::string Slapd::ldapiUri() const {
  return "ldapi://" + percentEncodedPath((dir_ / "ldapi").string());
}

void Slapd::writeCertificates() {
  // A CA, and a server certificate it signed for 127.0.0.1 (as IP and DNS SAN: GnuTLS matches
  // an IP host against IP SANs only). openssl 3 writes PKCS#8 keys, which GnuTLS reads.
  const auto dir = dir_.path().string();
  const auto log = dir_ / "openssl.log";
  writeFile(dir_ / "server.ext",
            "basicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=saslguard test CA' -keyout " +
          dir + "/ca.key -out " + dir + "/ca.pem",
      log);
  run("openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout " + dir +
          "/server.key -out " + dir + "/server.csr",
      log);
  run("openssl x509 -req -days 2 -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
          "/ca.key -CAcreateserial -extfile " + dir + "/server.ext -out " + dir + "/server.pem",
      log);
}

void Slapd::writeConfiguration() {
  const auto dir = dir_.path().string();
  std::ostringstream conf;
  for (const char* schema : {"core", "cosine", "inetorgperson", "nis", "misc"}) {
    conf << "include /etc/ldap/schema/" << schema << ".schema\n";
  }
  conf << "modulepath /usr/lib/ldap\n"
       << "moduleload back_mdb\n"
       << "pidfile " << dir << "/slapd.pid\n"
       << "argsfile " << dir << "/slapd.args\n";
  if (options_.tls) {
    conf << "TLSCACertificateFile " << dir << "/ca.pem\n"
         << "TLSCertificateFile " << dir << "/server.pem\n"
         << "TLSCertificateKeyFile " << dir << "/server.key\n";
  }
  conf << "database mdb\n"
       << "maxsize 10485760\n"
       << "suffix \"" << kSuffix << "\"\n"
       << "rootdn \"" << kRootDn << "\"\n"
       << "rootpw " << kRootPassword << "\n"
       << "directory " << dir << "/db\n"
       << "index objectClass,uid,mail,mailLocalAddress eq\n"
       << "access to * by * read\n";
  writeFile(dir_ / "slapd.conf", conf.str());
}

bool Slapd::launch() {
  std::string listeners = uri() + "/";
  if (options_.tls) listeners += " " + ldapsUri() + "/";
  if (options_.ldapi) listeners += " " + ldapiUri();
  std::vector<std::string> args{kBinary, "-f", (dir_ / "slapd.conf").string(), "-h", listeners,
                                "-d",    "0"};
  pid_ = spawnLogged(std::move(args), dir_ / "slapd.log");
  if (pid_ < 0) throw std::runtime_error(std::string("cannot start ") + kBinary);
  paused_ = false;
  if (waitUntilAnswering(std::chrono::seconds(10))) return true;
  if (pid_ > 0) stop();
  return false;
}

bool Slapd::waitUntilAnswering(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (loopbackAccepts(port_) && (!options_.tls || loopbackAccepts(tls_port_))) {
      return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: a port was taken, or bad config
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void Slapd::start() {
  if (pid_ > 0) return;
  // The same ports, which a client reconnects to; slapd sets SO_REUSEADDR, so the old
  // connections in TIME_WAIT do not block the bind. Another process may have taken the port
  // meanwhile, hence a few tries.
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (launch()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error("slapd did not restart; its log:\n" + log());
}

void Slapd::stop() {
  paused_ = false;
  stopChild(pid_, std::chrono::seconds(10));
}

void Slapd::pause() {
  if (pid_ <= 0 || paused_) return;
  ::kill(pid_, SIGSTOP);
  paused_ = true;
  // SIGSTOP reaches slapd's threads one by one; a test that sends a search right away must not
  // find one still answering. Wait until every thread's state is T (stopped), up to 2 s.
  const auto tasks = fs::path("/proc") / std::to_string(pid_) / "task";
  for (int attempt = 0; attempt < 200; ++attempt) {
    bool all_stopped = true;
    std::error_code ec;
    for (const auto& task : fs::directory_iterator(tasks, ec)) {
      std::ifstream stat(task.path() / "stat");
      std::string line;
      std::getline(stat, line);
      const auto close = line.rfind(')');
      if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') {
        all_stopped = false;
      }
    }
    if (all_stopped && !ec) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Slapd::resume() {
  if (pid_ <= 0 || !paused_) return;
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

std::string Slapd::log() const {
  std::ifstream in(dir_ / "slapd.log", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace saslguard::testing
