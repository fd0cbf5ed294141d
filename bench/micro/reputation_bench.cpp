// reputation_bench.cpp — the reputation detector's lookup() on the worker's event loop: answers
// from the DNS cache (the usual case: a user's addresses repeat), listed and not listed, and
// the whole request path with it (needsLookups, lookups, decide). The first lookup of each name
// goes to a tiny in-process DNS responder on loopback that answers 127.0.0.4 for 192.0.2.66 and
// NXDOMAIN for everything else; every measured one is a cache hit.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstring>
#include <thread>

#include "engine/detectors/reputation.hpp"
#include "engine/pipeline.hpp"
#include "enrich/dns.hpp"
#include "harness/harness.hpp"
#include "protocol/parser.hpp"

namespace saslguard::bench {
namespace {

// Answers A queries: 127.0.0.4 (TTL 3600) when the name starts with "66.2.0.192.", else NXDOMAIN.
class TinyDnsServer {
 public:
  TinyDnsServer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) std::abort();
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    timeval timeout{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyDnsServer() {
    stopping_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    unsigned char packet[512];
    while (!stopping_) {
      sockaddr_in peer{};
      socklen_t length = sizeof peer;
      const auto n =
          ::recvfrom(fd_, packet, sizeof packet, 0, reinterpret_cast<sockaddr*>(&peer), &length);
      if (n < 12) continue;
      // The question starts with the labels of 192.0.2.66 reversed: 66.2.0.192.
      static constexpr char kListed[] =
          "\x02"
          "66\x01"
          "2\x01"
          "0\x03"
          "192";
      const bool listed = n > 12 + static_cast<long>(sizeof kListed - 1) &&
                          std::memcmp(packet + 12, kListed, sizeof kListed - 1) == 0;
      std::size_t end = 12;  // the question: name, type, class
      while (end < static_cast<std::size_t>(n) && packet[end] != 0) end += packet[end] + 1;
      end += 5;
      if (end > static_cast<std::size_t>(n)) continue;
      packet[2] = 0x84 | (packet[2] & 0x01);  // QR, AA, RD copied
      packet[3] = listed ? 0x80 : 0x83;       // RA; NOERROR or NXDOMAIN
      packet[7] = listed ? 1 : 0;             // ANCOUNT
      packet[8] = packet[9] = packet[10] = packet[11] = 0;
      std::size_t size = end;
      if (listed) {
        const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
                                        0x0e, 0x10, 0, 4, 127, 0, 0, 4};
        std::memcpy(packet + size, answer, sizeof answer);
        size += sizeof answer;
      }
      ::sendto(fd_, packet, size, 0, reinterpret_cast<sockaddr*>(&peer), length);
    }
  }

  int fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

struct Environment {
  TinyDnsServer dns;
  TempDirectory dir{"saslguard-micro-reputation"};
  std::unique_ptr<store::EmbeddedStore> store = openStore(dir.path());
  engine::RecentDecisions recent{10000};
  engine::PipelinePtr pipeline;
  boost::asio::io_context context;
  engine::Enrichers enrichers;

  Environment() {
    discardLogLines();
    auto settings = benchSettings();
    settings.detectors.reputation.enabled = true;
    settings.detectors.reputation.action = "LOG";
    settings.detectors.reputation.zones = {"client-ip bl.bench.test",
                                           "hashed-recipient rcpt.bench.test"};
    settings.dns.servers = {dns.server()};
    pipeline = *engine::Pipeline::build(std::make_shared<const config::Settings>(settings), *store,
                                        recent);
    enrichers.dns =
        *enrich::DnsResolver::create(context, pipeline->dnsOptions(), pipeline->dnsCache());
  }
  ~Environment() {
    enrichers.dns.reset();
    (void)store->close();
  }
};

Environment& environment() {
  static Environment env;
  return env;
}

struct ParsedRequest {
  std::string text;
  protocol::Request request;
  explicit ParsedRequest(std::string_view client)
      : text(postfix37Request("alice@example.org", client)) {
    protocol::RequestParser parser;
    if (parser.parse(text, request).status != protocol::ParseStatus::Complete) std::abort();
  }
};

// Runs `body` (a coroutine holding the benchmark loop) on the environment's event loop, as a
// worker runs a connection: one run() for all iterations, so epoll is not in the measurement.
template <class Body>
void onEventLoop(Environment& env, Body body) {
  boost::asio::co_spawn(env.context, body, boost::asio::detached);
  env.context.restart();
  env.context.run();
}

// The connection's path for a request that wants a lookup: needsLookups, the lookups coroutine
// (cache hits), decide.
void BM_Reputation_RequestPath(benchmark::State& state, std::string_view client) {
  auto& env = environment();
  const ParsedRequest parsed(client);
  std::string reply;
  const auto once = [&]() -> boost::asio::awaitable<void> {
    reply.clear();
    const auto now = Clock::now();
    if (!env.pipeline->needsLookups(parsed.request, now)) {
      env.pipeline->decide(parsed.request, now, reply);
      co_return;
    }
    const auto lookups = co_await env.pipeline->lookups(parsed.request, now, env.enrichers);
    env.pipeline->decide(parsed.request, now, reply, &lookups);
  };
  onEventLoop(env, [&]() -> boost::asio::awaitable<void> {
    co_await once();  // fills the cache
    for (auto _ : state) co_await once();
  });
  if (reply.empty()) state.SkipWithError("no reply");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Reputation_RequestPath, not_listed_cached, "198.51.100.23");

// lookup() alone on a cached "not listed" answer for the address and the recipient.
void BM_Detector_Reputation(benchmark::State& state) {
  auto& env = environment();
  const ParsedRequest parsed("198.51.100.24");
  const engine::Identity identity{"bob@example.org", true};
  const engine::DetectorContext context{parsed.request, identity, Clock::now()};
  auto detector =
      *engine::ReputationDetector::create(env.pipeline->settings().detectors.reputation);
  engine::Verdict verdict;
  onEventLoop(env, [&]() -> boost::asio::awaitable<void> {
    verdict = co_await detector->lookup(context, env.enrichers);  // fills the cache
    for (auto _ : state) verdict = co_await detector->lookup(context, env.enrichers);
  });
  if (verdict.hasOpinion()) state.SkipWithError("unexpected verdict");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Detector_Reputation);

}  // namespace
}  // namespace saslguard::bench
