// dns.cpp — the c-ares resolver driven from Asio. c-ares owns its sockets (kept open between
// queries) and says through its socket-state callback which to watch; each is wrapped in a
// stream_descriptor only to wait for readiness while queries are in flight (released, never
// closed), and one steady_timer follows ares_timeout() for retries.
#include "enrich/dns.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "enrich/dns_cache.hpp"
#include "metrics/metrics.hpp"

namespace saslguard::enrich {
namespace asio = boost::asio;
namespace {

using SteadyClock = std::chrono::steady_clock;

// A failure kind is logged at most once per this interval per worker; the counters see all.
constexpr auto kWarningInterval = std::chrono::seconds(60);
// Enough for any DNSBL answer (they return one to a handful of 127.0.0.x codes).
constexpr int kMaxAddresses = 32;
constexpr char kShuttingDown[] = "shutting down";

DnsAnswer failedAnswer(DnsStatus status, std::string error) {
  DnsAnswer answer;
  answer.status = status;
  answer.error = std::move(error);
  return answer;
}

bool isIpAddress(const std::string& text, int family) {
  std::array<unsigned char, 16> bytes{};
  return ::inet_pton(family, text.c_str(), bytes.data()) == 1;
}

bool isPort(std::string_view text) {
  unsigned port = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  return error == std::errc() && end == text.data() + text.size() && port >= 1 && port <= 65535;
}

// "127.0.0.1", "127.0.0.1:15353", "::1", "[::1]", "[::1]:53": what ares_set_servers_ports_csv
// understands. Checked here so the error can name the entry (c-ares only says "bad string").
bool isServerEntry(const std::string& entry) {
  if (!entry.empty() && entry.front() == '[') {
    const auto close = entry.find(']');
    if (close == std::string::npos) return false;
    const auto rest = std::string_view(entry).substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !isPort(rest.substr(1)))) return false;
    return isIpAddress(entry.substr(1, close - 1), AF_INET6);
  }
  if (std::count(entry.begin(), entry.end(), ':') > 1) return isIpAddress(entry, AF_INET6);
  const auto colon = entry.find(':');
  if (colon != std::string::npos && !isPort(std::string_view(entry).substr(colon + 1))) {
    return false;
  }
  return isIpAddress(entry.substr(0, colon), AF_INET);
}

// c-ares's socket-creation callback, called once its UDP/TCP socket is connected to a server.
// A server on this host whose port lies in the ephemeral range, while it is down, can be
// "connected" to by a socket that the kernel gave that very port: the socket then talks to
// itself, reads its own queries back as empty answers ("not listed") and holds the port, so the
// server cannot bind it again when it restarts. Such a socket is refused; c-ares closes it and
// counts the try as failed.
int refuseSelfConnected(ares_socket_t socket, int /*type*/, void* /*data*/) {
  sockaddr_storage local{};
  sockaddr_storage peer{};
  socklen_t local_length = sizeof local;
  socklen_t peer_length = sizeof peer;
  if (::getsockname(socket, reinterpret_cast<sockaddr*>(&local), &local_length) != 0 ||
      ::getpeername(socket, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) {
    return 0;  // not connected yet (a TCP connect in progress): nothing to compare
  }
  const bool same = local_length == peer_length && std::memcmp(&local, &peer, local_length) == 0;
  return same ? -1 : 0;
}

// Steps over a possibly compressed name at `offset`; nullopt when it runs off the message.
std::optional<std::size_t> skipName(const unsigned char* message, std::size_t length,
                                    std::size_t offset) {
  while (offset < length) {
    const unsigned label = message[offset];
    if (label == 0) return offset + 1;
    if ((label & 0xc0) == 0xc0)
      return offset + 2 <= length ? std::optional(offset + 2) : std::nullopt;
    offset += 1 + label;
  }
  return std::nullopt;
}

std::uint32_t read32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
std::uint16_t read16(const unsigned char* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// How long a negative answer may be cached according to the zone (RFC 2308: the smaller of the
// SOA record's TTL and its MINIMUM field), when the reply carries a SOA record.
std::optional<std::chrono::seconds> negativeTtlFromSoa(const unsigned char* message, int size) {
  if (message == nullptr || size < HFIXEDSZ) return std::nullopt;
  const auto length = static_cast<std::size_t>(size);
  const unsigned questions = read16(message + 4);
  const unsigned records = read16(message + 6) + read16(message + 8);  // answer + authority
  std::size_t offset = HFIXEDSZ;
  for (unsigned i = 0; i < questions; ++i) {
    const auto end = skipName(message, length, offset);
    if (!end || *end + QFIXEDSZ > length) return std::nullopt;
    offset = *end + QFIXEDSZ;
  }
  for (unsigned i = 0; i < records; ++i) {
    const auto end = skipName(message, length, offset);
    if (!end || *end + RRFIXEDSZ > length) return std::nullopt;
    const unsigned char* fixed = message + *end;
    const std::size_t data_offset = *end + RRFIXEDSZ;
    const std::size_t data_length = read16(fixed + 8);
    if (data_offset + data_length > length) return std::nullopt;
    if (read16(fixed) == ns_t_soa) {
      const auto mname_end = skipName(message, length, data_offset);
      const auto rname_end = mname_end ? skipName(message, length, *mname_end) : std::nullopt;
      // serial, refresh, retry, expire, minimum: 5 x 32 bits after the two names.
      if (!rname_end || *rname_end + 20 > data_offset + data_length) return std::nullopt;
      const std::uint32_t record_ttl = read32(fixed + 4);
      const std::uint32_t minimum = read32(message + *rname_end + 16);
      return std::chrono::seconds(std::min(record_ttl, minimum));
    }
    offset = data_offset + data_length;
  }
  return std::nullopt;
}

// The shared state of one resolver. Handlers and waiting lookups hold it by shared_ptr, so it
// outlives the DnsResolver that the caller destroys; shutdown() makes it inert.
class AresChannel final : public std::enable_shared_from_this<AresChannel> {
 public:
  AresChannel(asio::io_context& context, const DnsOptions& options, std::shared_ptr<DnsCache> cache)
      : context_(context), options_(options), cache_(std::move(cache)), timeout_timer_(context) {}
  ~AresChannel() { shutdown(); }
  AresChannel(const AresChannel&) = delete;
  AresChannel& operator=(const AresChannel&) = delete;

  Result<void> open();
  std::optional<DnsAnswer> cached(std::string_view name);
  static asio::awaitable<DnsAnswer> resolve(std::shared_ptr<AresChannel> self, std::string name);
  void shutdown();

 private:
  // One c-ares socket being watched for readiness. The descriptor only registers the fd with
  // the reactor; c-ares reads, writes and closes it.
  struct SocketWatch {
    SocketWatch(asio::io_context& context, ares_socket_t socket)
        : fd(socket), descriptor(context) {}
    ~SocketWatch() { stop(); }
    void stop() {
      active = false;
      if (descriptor.is_open()) descriptor.release();  // cancels the waits, leaves the fd open
    }
    ares_socket_t fd;
    asio::posix::stream_descriptor descriptor;
    bool active = true;
    bool want_read = false;
    bool want_write = false;
    bool read_pending = false;
    bool write_pending = false;
  };

  // One query in flight and everyone waiting for it. The waiters sleep on a timer set to the
  // lookup's deadline: completing the query cancels it, which wakes them all; its expiry ends
  // the lookup as a timeout even while c-ares is still retrying.
  struct Flight {
    Flight(asio::io_context& context, AresChannel& owner, std::string query_name,
           SteadyClock::time_point deadline)
        : channel(owner), name(std::move(query_name)), wakeup(context, deadline) {}
    AresChannel& channel;
    std::string name;  // normalised
    asio::steady_timer wakeup;
    bool done = false;
    DnsAnswer answer;
  };

  struct WarningThrottle {
    SteadyClock::time_point last{};
    std::uint64_t suppressed = 0;
  };

  static void onSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void onQueryDone(void* arg, int status, int timeouts, unsigned char* reply,
                          int reply_length);

  void watchSocket(ares_socket_t fd, bool readable, bool writable);
  void armReadWaits();
  void disarmReadWaits();
  void awaitReadable(const std::shared_ptr<SocketWatch>& watch);
  void awaitWritable(const std::shared_ptr<SocketWatch>& watch);
  void scheduleTimeouts();
  void finish(Flight& flight, int status, const unsigned char* reply, int reply_length);
  void expire(const std::shared_ptr<Flight>& flight);
  void complete(Flight& flight, DnsAnswer answer);
  DnsAnswer answerFor(int status, const unsigned char* reply, int reply_length,
                      std::chrono::seconds& ttl) const;
  void warn(WarningThrottle& throttle, const std::string& name, const std::string& error);
  std::string timeoutText() const {
    return "no DNS answer within " + std::to_string(options_.tries) + " x " +
           std::to_string(options_.timeout.count()) + " ms";
  }

  std::string unresponsiveText() const {
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() -
                                                                             *unresponsive_since_);
    return "DNS servers unresponsive (no answer for " + std::to_string(since.count()) +
           " ms): failed without waiting";
  }

  asio::io_context& context_;
  DnsOptions options_;
  std::shared_ptr<DnsCache> cache_;
  ares_channel channel_ = nullptr;  // null once shut down
  asio::steady_timer timeout_timer_;
  std::unordered_map<ares_socket_t, std::shared_ptr<SocketWatch>> watches_;
  // Queries c-ares holds (ares_query called, onQueryDone not yet). Read waits are armed only
  // while this is not zero: the sockets stay open between queries, but an idle resolver leaves
  // no work on the io_context, so a loop with nothing else to do returns.
  std::size_t queries_in_flight_ = 0;
  // Flights that a new lookup may still join. c-ares holds its own reference to each flight
  // (the query's argument), since a flight past its deadline leaves this map before c-ares is
  // done with it.
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  // Set when a lookup ran out of time (every try unanswered), cleared by the next reply. While
  // set, lookups that miss the cache send their query but answer a timeout at once.
  std::optional<SteadyClock::time_point> unresponsive_since_;
  WarningThrottle timeout_warnings_;
  WarningThrottle failure_warnings_;
};

Result<void> AresChannel::open() {
  if (options_.timeout <= std::chrono::milliseconds::zero()) return fail("DNS timeout must be > 0");
  if (options_.tries < 1) return fail("DNS tries must be at least 1");
  for (const auto& entry : options_.servers) {
    if (!isServerEntry(entry)) {
      return fail("DNS server '" + entry +
                  "' is not an IP address with an optional port (\"127.0.0.1:53\", \"[::1]:53\")");
    }
  }

  ares_options settings{};
  // Query names are absolute (reversed address + zone): never append a search domain, never
  // consult HOSTALIASES.
  // SERVFAIL and REFUSED come back as answers instead of being retried: c-ares 1.18 would ask
  // the same server again and then report "Could not contact DNS servers", hiding the cause.
  // The cost: no failover to a second server on those two codes (timeouts still fail over).
  // STAYOPEN: without it c-ares closes its UDP socket whenever no query is pending and opens a
  // new one for the next (socket, fcntl, connect, epoll_ctl twice, close: a reputation lookup
  // that misses the cache paid them all). Idle sockets are not watched (armReadWaits).
  settings.flags =
      ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP | ARES_FLAG_STAYOPEN;
  settings.timeout = static_cast<int>(options_.timeout.count());
  settings.tries = options_.tries;
  settings.sock_state_cb = &AresChannel::onSocketState;
  settings.sock_state_cb_data = this;
  const int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
  if (const int status = ares_init_options(&channel_, &settings, mask); status != ARES_SUCCESS) {
    channel_ = nullptr;
    return fail(std::string("cannot set up the DNS resolver: ") + ares_strerror(status));
  }
  ares_set_socket_callback(channel_, &refuseSelfConnected, nullptr);
  if (!options_.servers.empty()) {
    std::string csv;
    for (const auto& entry : options_.servers) {
      csv += csv.empty() ? "" : ",";
      // c-ares 1.18 takes "[::1]:53" and "::1" but not "[::1]".
      csv +=
          entry.front() == '[' && entry.back() == ']' ? entry.substr(1, entry.size() - 2) : entry;
    }
    if (const int status = ares_set_servers_ports_csv(channel_, csv.c_str());
        status != ARES_SUCCESS) {
      ares_destroy(channel_);
      channel_ = nullptr;
      return fail("DNS servers '" + csv + "' rejected: " + ares_strerror(status));
    }
  }
  return {};
}

std::optional<DnsAnswer> AresChannel::cached(std::string_view name) {
  auto hit = cache_->find(name, SteadyClock::now());
  if (hit) SASLGUARD_COUNT(dns_cache_hits_total);
  return hit;
}

asio::awaitable<DnsAnswer> AresChannel::resolve(std::shared_ptr<AresChannel> self,
                                                std::string name) {
  if (auto hit = self->cached(name)) co_return std::move(*hit);

  auto key = normalizedDnsName(name);
  std::shared_ptr<Flight> flight;
  if (const auto joined = self->flights_.find(key); joined != self->flights_.end()) {
    flight = joined->second;
    SASLGUARD_COUNT(dns_merged_total);
  } else {
    if (self->channel_ == nullptr) co_return failedAnswer(DnsStatus::kFailed, kShuttingDown);
    const auto deadline = SteadyClock::now() + self->options_.timeout * self->options_.tries;
    flight = std::make_shared<Flight>(self->context_, *self, key, deadline);
    self->flights_.emplace(std::move(key), flight);
    SASLGUARD_COUNT(dns_queries_total);
    // May call onQueryDone before returning (a name c-ares rejects): `done` covers that.
    ++self->queries_in_flight_;
    ares_query(self->channel_, flight->name.c_str(), ns_c_in, ns_t_a, &AresChannel::onQueryDone,
               new std::shared_ptr<Flight>(flight));
    // A socket kept open from earlier queries is not watched while idle.
    self->armReadWaits();
    self->scheduleTimeouts();
  }
  // The servers let the last query time out and have not answered since: waiting the whole
  // budget again would only add to the caller's wait (the reputation detector asks one zone after
  // another, so two waits made one request take twice the budget). The query is still sent, or
  // joined, and its reply ends this state and fills the cache for the next lookup.
  if (self->unresponsive_since_ && !flight->done) {
    SASLGUARD_COUNT(dns_failures_total);
    auto answer = failedAnswer(DnsStatus::kTimeout, self->unresponsiveText());
    self->warn(self->failure_warnings_, flight->name, answer.error);
    co_return answer;
  }
  while (!flight->done) {
    boost::system::error_code woken;  // operation_aborted: the query finished
    co_await flight->wakeup.async_wait(asio::redirect_error(asio::use_awaitable, woken));
    if (!woken && !flight->done) self->expire(flight);
  }
  co_return flight->answer;
}

void AresChannel::shutdown() {
  if (channel_ == nullptr) return;
  // ares_destroy completes every query (ARES_EDESTRUCTION → "shutting down") and reports each
  // socket closed, which releases its watch.
  ares_channel channel = std::exchange(channel_, nullptr);
  ares_destroy(channel);
  for (auto& [fd, watch] : watches_) watch->stop();
  watches_.clear();
  timeout_timer_.cancel();
}

void AresChannel::onSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  static_cast<AresChannel*>(data)->watchSocket(fd, readable != 0, writable != 0);
}

void AresChannel::watchSocket(ares_socket_t fd, bool readable, bool writable) {
  auto found = watches_.find(fd);
  if (!readable && !writable) {  // c-ares is about to close it
    if (found != watches_.end()) {
      found->second->stop();
      watches_.erase(found);
    }
    return;
  }
  if (found == watches_.end()) {
    auto watch = std::make_shared<SocketWatch>(context_, fd);
    boost::system::error_code error;
    watch->descriptor.assign(fd, error);
    if (error) {
      // Without readiness events the query still ends, by its timeout.
      spdlog::warn("DNS: cannot watch the resolver socket: {}", error.message());
      return;
    }
    found = watches_.emplace(fd, std::move(watch)).first;
  }
  const auto watch = found->second;
  watch->want_read = readable;
  watch->want_write = writable;
  if (readable && !watch->read_pending) awaitReadable(watch);
  if (writable && !watch->write_pending) awaitWritable(watch);
}

void AresChannel::armReadWaits() {
  if (queries_in_flight_ == 0) return;
  for (auto& [fd, watch] : watches_) {
    if (watch->active && watch->want_read && !watch->read_pending) awaitReadable(watch);
  }
}

// Called when the last query ended without its socket becoming readable (timed out, failed):
// the pending waits would otherwise keep the io_context busy until a stray datagram arrives.
// Cancelling costs no system call (the descriptors stay registered with the reactor).
void AresChannel::disarmReadWaits() {
  for (auto& [fd, watch] : watches_) {
    if (watch->read_pending) {
      boost::system::error_code ignored;
      watch->descriptor.cancel(ignored);
    }
  }
}

void AresChannel::awaitReadable(const std::shared_ptr<SocketWatch>& watch) {
  watch->read_pending = true;
  watch->descriptor.async_wait(
      asio::posix::descriptor_base::wait_read,
      [self = shared_from_this(), watch](const boost::system::error_code& error) {
        watch->read_pending = false;
        if (!watch->active || self->channel_ == nullptr) return;
        // operation_aborted: disarmed while idle; a query sent since then needs the wait back.
        if (error != asio::error::operation_aborted) {
          ares_process_fd(self->channel_, watch->fd, ARES_SOCKET_BAD);
        }
        if (watch->active && watch->want_read && !watch->read_pending &&
            self->queries_in_flight_ > 0) {
          self->awaitReadable(watch);
        }
        self->scheduleTimeouts();
      });
}

void AresChannel::awaitWritable(const std::shared_ptr<SocketWatch>& watch) {
  watch->write_pending = true;
  watch->descriptor.async_wait(
      asio::posix::descriptor_base::wait_write,
      [self = shared_from_this(), watch](const boost::system::error_code& error) {
        watch->write_pending = false;
        if (!watch->active || error == asio::error::operation_aborted) return;
        ares_process_fd(self->channel_, ARES_SOCKET_BAD, watch->fd);
        if (watch->active && watch->want_write && !watch->write_pending) {
          self->awaitWritable(watch);
        }
        self->scheduleTimeouts();
      });
}

void AresChannel::scheduleTimeouts() {
  if (channel_ == nullptr) return;
  timeval next{};
  if (ares_timeout(channel_, nullptr, &next) == nullptr) {  // nothing in flight
    timeout_timer_.cancel();
    return;
  }
  timeout_timer_.expires_after(std::chrono::seconds(next.tv_sec) +
                               std::chrono::microseconds(next.tv_usec));
  timeout_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (error || self->channel_ == nullptr) return;
    // With no socket given, c-ares only retries or expires the queries that are due.
    ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    self->scheduleTimeouts();
  });
}

void AresChannel::onQueryDone(void* arg, int status, int /*timeouts*/, unsigned char* reply,
                              int reply_length) {
  // c-ares calls this exactly once per query, also when cancelled or destroyed.
  const std::unique_ptr<std::shared_ptr<Flight>> flight(static_cast<std::shared_ptr<Flight>*>(arg));
  auto& channel = (*flight)->channel;
  if (channel.queries_in_flight_ > 0 && --channel.queries_in_flight_ == 0) {
    channel.disarmReadWaits();
  }
  channel.finish(**flight, status, reply, reply_length);
}

void AresChannel::finish(Flight& flight, int status, const unsigned char* reply, int reply_length) {
  auto ttl = std::chrono::seconds::zero();
  auto answer = answerFor(status, reply, reply_length, ttl);
  // Failures are not cached: the next lookup asks again, and merging already limits a dead
  // server to one query per name per worker at a time. An answer arriving after the lookup's
  // deadline is still cached, for the next lookup.
  if (answer.status == DnsStatus::kFound || answer.status == DnsStatus::kNotFound) {
    cache_->store(flight.name, answer, ttl, SteadyClock::now());
  }
  if (answer.status == DnsStatus::kTimeout) {
    if (!unresponsive_since_) unresponsive_since_ = SteadyClock::now();
  } else if (answer.error != kShuttingDown) {
    unresponsive_since_.reset();  // a reply, or a fast failure: lookups wait for answers again
  }
  if (flight.done) return;  // already answered as a timeout at its deadline
  if (answer.status == DnsStatus::kTimeout) {
    SASLGUARD_COUNT(dns_timeouts_total);
    warn(timeout_warnings_, flight.name, answer.error);
  } else if (answer.status == DnsStatus::kFailed && answer.error != kShuttingDown) {
    SASLGUARD_COUNT(dns_failures_total);
    warn(failure_warnings_, flight.name, answer.error);
  }
  complete(flight, std::move(answer));
}

void AresChannel::expire(const std::shared_ptr<Flight>& flight) {
  // c-ares 1.18 doubles the wait on every retry; the caller was promised timeout x tries.
  SASLGUARD_COUNT(dns_timeouts_total);
  if (!unresponsive_since_) unresponsive_since_ = SteadyClock::now();
  auto answer = failedAnswer(DnsStatus::kTimeout, timeoutText());
  warn(timeout_warnings_, flight->name, answer.error);
  complete(*flight, std::move(answer));
}

void AresChannel::complete(Flight& flight, DnsAnswer answer) {
  // A later lookup of the same name may have started its own flight: leave that one alone.
  if (const auto entry = flights_.find(flight.name);
      entry != flights_.end() && entry->second.get() == &flight) {
    flights_.erase(entry);
  }
  flight.answer = std::move(answer);
  flight.done = true;
  flight.wakeup.cancel();
}

DnsAnswer AresChannel::answerFor(int status, const unsigned char* reply, int reply_length,
                                 std::chrono::seconds& ttl) const {
  switch (status) {
    case ARES_SUCCESS: {
      std::array<ares_addrttl, kMaxAddresses> records{};
      int count = kMaxAddresses;
      const int parsed = ares_parse_a_reply(reply, reply_length, nullptr, records.data(), &count);
      if (parsed == ARES_ENODATA || (parsed == ARES_SUCCESS && count == 0)) {
        ttl = std::min(negativeTtlFromSoa(reply, reply_length).value_or(options_.negative_ttl),
                       options_.negative_ttl);
        return failedAnswer(DnsStatus::kNotFound, "");
      }
      if (parsed != ARES_SUCCESS) return failedAnswer(DnsStatus::kFailed, ares_strerror(parsed));
      DnsAnswer answer;
      answer.status = DnsStatus::kFound;
      int shortest_ttl = records[0].ttl;
      for (int i = 0; i < count; ++i) {
        answer.addresses.push_back(ntohl(records[static_cast<std::size_t>(i)].ipaddr.s_addr));
        shortest_ttl = std::min(shortest_ttl, records[static_cast<std::size_t>(i)].ttl);
      }
      ttl = std::min(std::chrono::seconds(std::max(shortest_ttl, 0)), options_.max_ttl);
      return answer;
    }
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
      ttl = std::min(negativeTtlFromSoa(reply, reply_length).value_or(options_.negative_ttl),
                     options_.negative_ttl);
      return failedAnswer(DnsStatus::kNotFound, "");
    case ARES_ETIMEOUT:
      return failedAnswer(DnsStatus::kTimeout, timeoutText());
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return failedAnswer(DnsStatus::kFailed, kShuttingDown);
    default:
      // "DNS server returned general failure", "DNS server refused query", ...
      return failedAnswer(DnsStatus::kFailed, ares_strerror(status));
  }
}

void AresChannel::warn(WarningThrottle& throttle, const std::string& name,
                       const std::string& error) {
  const auto now = SteadyClock::now();
  if (throttle.last != SteadyClock::time_point{} && now - throttle.last < kWarningInterval) {
    ++throttle.suppressed;
    return;
  }
  // Not the name: for keyed zones it holds the API key, which must never reach a log. The
  // caller (the reputation detector) logs which zone failed.
  (void)name;
  if (throttle.suppressed == 0) {
    spdlog::warn("DNS lookup failed: {}", error);
  } else {
    spdlog::warn("DNS lookup failed: {} ({} more like it since the last warning)", error,
                 throttle.suppressed);
  }
  throttle.last = now;
  throttle.suppressed = 0;
}

class AresResolver final : public DnsResolver {
 public:
  explicit AresResolver(std::shared_ptr<AresChannel> channel) : channel_(std::move(channel)) {}
  ~AresResolver() override { channel_->shutdown(); }

  std::optional<DnsAnswer> cached(std::string_view name) override { return channel_->cached(name); }
  asio::awaitable<DnsAnswer> resolve(std::string name) override {
    return AresChannel::resolve(channel_, std::move(name));
  }
  void shutdown() override { channel_->shutdown(); }

 private:
  std::shared_ptr<AresChannel> channel_;
};

}  // namespace

std::shared_ptr<DnsCache> makeDnsCache(const DnsOptions& options) {
  return std::make_shared<DnsCache>(options.cache_entries);
}

Result<std::unique_ptr<DnsResolver>> DnsResolver::create(asio::io_context& context,
                                                         const DnsOptions& options,
                                                         std::shared_ptr<DnsCache> cache) {
  if (!cache) cache = makeDnsCache(options);
  auto channel = std::make_shared<AresChannel>(context, options, std::move(cache));
  if (auto opened = channel->open(); !opened) return tl::unexpected(opened.error());
  return std::unique_ptr<DnsResolver>(std::make_unique<AresResolver>(std::move(channel)));
}

}  // namespace saslguard::enrich
