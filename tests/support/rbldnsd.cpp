// rbldnsd.cpp — see rbldnsd.hpp. rbldnsd drops to user rbldns when started as root, so the zone
// directory and every directory above it must be readable/traversable by others.
#include "support/rbldnsd.hpp"

#include "support/child_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace saslguard::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kStartAttempts = 5;

int boundUdpSocket(unsigned short& port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a UDP socket on 127.0.0.1");
  }
  port = ntohs(address.sin_port);
  return fd;
}

// A port that was free a moment ago. rbldnsd must bind it itself, so there is a small race with
// other processes; start() retries on another port when rbldnsd fails to bind.
unsigned short freeUdpPort() {
  unsigned short port = 0;
  ::close(boundUdpSocket(port));
  return port;
}

void writeFile(const fs::path& path, const std::string& content) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path.string());
  }
  fs::permissions(path, fs::perms(0644));
}

// rbldnsd runs as rbldns: every directory above the zone files must let others through.
void requireTraversableParents(const fs::path& dir) {
  for (auto path = dir.parent_path(); !path.empty(); path = path.parent_path()) {
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0 && (info.st_mode & S_IXOTH) == 0) {
      throw std::runtime_error("rbldnsd (user rbldns) cannot reach its zone files: " +
                               path.string() + " is not traversable by others; set TMPDIR");
    }
    if (path == path.root_path()) break;
  }
}

std::vector<unsigned char> encodeQuery(std::uint16_t id, const std::string& name) {
  std::vector<unsigned char> packet{static_cast<unsigned char>(id >> 8),
                                    static_cast<unsigned char>(id & 0xff),
                                    0x01,  // RD
                                    0x00,
                                    0,
                                    1,  // QDCOUNT
                                    0,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0};
  std::istringstream labels(name);
  std::string label;
  while (std::getline(labels, label, '.')) {
    if (label.empty()) continue;
    packet.push_back(static_cast<unsigned char>(label.size()));
    packet.insert(packet.end(), label.begin(), label.end());
  }
  packet.insert(packet.end(), {0, 0, 1, 0, 1});  // root, QTYPE A, QCLASS IN
  return packet;
}

std::size_t skipName(const unsigned char* data, std::size_t size, std::size_t offset) {
  while (offset < size) {
    const unsigned label = data[offset];
    if (label == 0) return offset + 1;
    if ((label & 0xc0) == 0xc0) return offset + 2;
    offset += 1 + label;
  }
  return size + 1;
}

std::optional<DnsReply> decodeReply(std::uint16_t id, const unsigned char* data, std::size_t size) {
  if (size < 12 || data[0] != (id >> 8) || data[1] != (id & 0xff) || (data[2] & 0x80) == 0) {
    return std::nullopt;
  }
  DnsReply reply;
  reply.rcode = data[3] & 0x0f;
  const unsigned questions = (data[4] << 8) | data[5];
  const unsigned answers = (data[6] << 8) | data[7];
  std::size_t offset = 12;
  for (unsigned i = 0; i < questions && offset <= size; ++i)
    offset = skipName(data, size, offset) + 4;
  for (unsigned i = 0; i < answers; ++i) {
    offset = skipName(data, size, offset);
    if (offset + 10 > size) break;
    const unsigned type = (data[offset] << 8) | data[offset + 1];
    const unsigned length = (data[offset + 8] << 8) | data[offset + 9];
    offset += 10;
    if (offset + length > size) break;
    if (type == 1 && length == 4) {
      reply.addresses.push_back((std::uint32_t{data[offset]} << 24) |
                                (std::uint32_t{data[offset + 1]} << 16) |
                                (std::uint32_t{data[offset + 2]} << 8) | data[offset + 3]);
    }
    offset += length;
  }
  return reply;
}

}  // namespace

std::optional<DnsReply> queryA(unsigned short port, const std::string& name,
                               std::chrono::milliseconds timeout) {
  static thread_local std::mt19937 random{std::random_device{}()};
  const auto id = static_cast<std::uint16_t>(random());
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto query = encodeQuery(id, name);
  std::optional<DnsReply> reply;
  if (::sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&server),
               sizeof server) == static_cast<ssize_t>(query.size())) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!reply) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd readable{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0) break;
      std::array<unsigned char, 4096> buffer{};
      const auto received = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (received <= 0) break;  // ECONNREFUSED: nobody listens
      reply = decodeReply(id, buffer.data(), static_cast<std::size_t>(received));
    }
  }
  ::close(fd);
  return reply;
}

std::uint32_t ipv4(const std::string& dotted) {
  in_addr address{};
  if (::inet_pton(AF_INET, dotted.c_str(), &address) != 1) {
    throw std::invalid_argument("not an IPv4 address: " + dotted);
  }
  return ntohl(address.s_addr);
}

Rbldnsd::Rbldnsd(std::vector<RbldnsdZone> zones, bool also_ipv6)
    : zones_(zones), also_ipv6_(also_ipv6) {
  // mkdtemp makes the directory 0700; rbldns must read it.
  fs::permissions(dir_.path(), fs::perms(0755));
  requireTraversableParents(dir_.path());
  for (const auto& zone : zones) writeFile(dir_ / zone.file, zone.content);
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (start(zones)) return;
  }
  throw std::runtime_error("rbldnsd did not start; its log:\n" + log());
}

Rbldnsd::~Rbldnsd() {
  stop();
}

void Rbldnsd::restart() {
  stop();
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (start(zones_, port_)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the port is still closing
  }
  throw std::runtime_error("rbldnsd did not start again; its log:\n" + log());
}

bool Rbldnsd::start(const std::vector<RbldnsdZone>& zones, unsigned short port) {
  port_ = port != 0 ? port : freeUdpPort();
  const auto directory = dir_.path().string();
  std::vector<std::string> args{kBinary, "-n", "-c", "0"};  // foreground; reload on SIGHUP only
  if (::geteuid() == 0) args.insert(args.end(), {"-u", "rbldns"});  // it refuses to stay root
  args.insert(args.end(), {"-b", "127.0.0.1/" + std::to_string(port_)});
  if (also_ipv6_) args.insert(args.end(), {"-b", "::1/" + std::to_string(port_)});
  args.insert(args.end(), {"-w", directory, "-p", directory + "/rbldnsd.pid"});
  for (const auto& zone : zones) args.push_back(zone.zone + ":" + zone.type + ":" + zone.file);

  pid_ = spawnLogged(std::move(args), dir_ / "rbldnsd.log");
  if (pid_ < 0) throw std::runtime_error(std::string("cannot start ") + kBinary);

  // Up once it answers anything (NXDOMAIN for a name nobody listed will do).
  const auto probe = "probe." + zones.front().zone;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (queryA(port_, probe, std::chrono::milliseconds(100))) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: the port was taken, or bad data
      pid_ = -1;
      return false;
    }
  }
  stop();
  return false;
}

void Rbldnsd::stop() {
  stopChild(pid_, std::chrono::seconds(5));
}

std::string Rbldnsd::log() const {
  std::ifstream in(dir_ / "rbldnsd.log", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void Rbldnsd::rewrite(const std::string& file, const std::string& content) {
  const auto target = dir_ / file;
  const auto staged = dir_ / (file + ".new");
  writeFile(staged, content);
  // rbldnsd reloads a file whose mtime differs from the one it loaded; a rewrite within the same
  // second would keep it, so move the mtime past both the old one and now.
  std::error_code ignored;
  auto mtime = fs::last_write_time(target, ignored) + std::chrono::seconds(1);
  mtime = std::max(mtime, fs::file_time_type::clock::now());
  fs::last_write_time(staged, mtime);
  fs::rename(staged, target);
  if (pid_ > 0) ::kill(pid_, SIGHUP);
}

bool Rbldnsd::waitForAnswer(const std::string& name, std::optional<std::uint32_t> address,
                            std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto reply = queryA(port_, name, std::chrono::milliseconds(200));
    if (reply) {
      const bool listed = !reply->addresses.empty();
      if (!address && !listed && reply->rcode == 3) return true;
      if (address && listed && reply->addresses.front() == *address) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

FixedRcodeDnsServer::FixedRcodeDnsServer(int rcode) : rcode_(rcode) {
  fd_ = boundUdpSocket(port_);
  thread_ = std::thread([this] { serve(); });
}

FixedRcodeDnsServer::~FixedRcodeDnsServer() {
  stopping_ = true;
  thread_.join();
  ::close(fd_);
}

void FixedRcodeDnsServer::serve() {
  while (!stopping_) {
    pollfd readable{fd_, POLLIN, 0};
    if (::poll(&readable, 1, 50) <= 0) continue;  // wake up now and then to see stopping_
    std::array<unsigned char, 4096> packet{};
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    const auto size = ::recvfrom(fd_, packet.data(), packet.size(), 0,
                                 reinterpret_cast<sockaddr*>(&peer), &peer_length);
    if (size < 12) continue;
    packet[2] |= 0x80;                                                     // QR: a response
    packet[3] = static_cast<unsigned char>(0x80 | (rcode_ & 0x0f));        // RA + RCODE
    for (int i = 6; i < 12; ++i) packet[static_cast<std::size_t>(i)] = 0;  // no records
    ++answered_;  // before the reply: the client may look as soon as it has it
    ::sendto(fd_, packet.data(), static_cast<std::size_t>(size), 0,
             reinterpret_cast<sockaddr*>(&peer), peer_length);
  }
}

SilentUdpPort::SilentUdpPort() {
  fd_ = boundUdpSocket(port_);
}

SilentUdpPort::~SilentUdpPort() {
  ::close(fd_);
}

}  // namespace saslguard::testing
