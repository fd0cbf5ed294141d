// main.cpp — saslguard-baseline: the smallest honest Postfix policy server, to measure the
// machine's ceiling. It reads and splits every request line (name=value until an empty line,
// CRLF tolerated), answers "action=DUNNO" to each request in order, and does nothing else.
#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "common/endpoint.hpp"

namespace saslguard::bench {
namespace {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;  // TCP or unix socket, chosen by --listen
using Acceptor = asio::basic_socket_acceptor<Protocol>;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kReply = "action=DUNNO\n\n";
constexpr size_t kReadSize = 16 * 1024;
constexpr size_t kMaxLine = 64 * 1024;  // a longer line is not Postfix talking: drop the client

struct ThreadCounters {  // written by one thread, read after it has stopped
  uint64_t connections = 0;
  uint64_t requests = 0;
  uint64_t attributes = 0;
  uint64_t malformed_lines = 0;  // no '=': counted, not fatal (as Postfix's own attr_scan0 is not)
};

// Splits the complete lines at the front of `data`, appends one reply per finished request to
// `out`, and returns how many bytes were consumed (a partial line stays for the next read).
size_t consumeRequests(std::string_view data, uint64_t& attributes_in_request, std::string& out,
                       ThreadCounters& counters) {
  size_t consumed = 0;
  for (;;) {
    auto newline = data.find('\n', consumed);
    if (newline == std::string_view::npos) return consumed;
    auto line = data.substr(consumed, newline - consumed);
    consumed = newline + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // end of a request; a stray empty line between requests gets no reply
      if (attributes_in_request > 0) {
        out.append(kReply);
        ++counters.requests;
        counters.attributes += attributes_in_request;
      }
      attributes_in_request = 0;
      continue;
    }
    auto equals = line.find('=');
    if (equals == 0 || equals == std::string_view::npos) {
      ++counters.malformed_lines;
      continue;
    }
    auto name = line.substr(0, equals);  // split as a real server must, then leave it at that
    auto value = line.substr(equals + 1);
    (void)name;
    (void)value;
    ++attributes_in_request;
  }
}

asio::awaitable<void> serveConnection(Protocol::socket socket, ThreadCounters& counters) {
  ++counters.connections;
  std::vector<char> in(kReadSize);
  size_t size = 0;
  uint64_t attributes_in_request = 0;
  std::string out;
  for (;;) {
    if (in.size() - size < kReadSize / 4) {  // keep room to read into; a long line grows the buffer
      if (in.size() >= kMaxLine) break;
      in.resize(in.size() * 2);
    }
    auto [read_error, got] =
        co_await socket.async_read_some(asio::buffer(in.data() + size, in.size() - size), kAwait);
    if (read_error) break;
    size += got;
    auto consumed = consumeRequests({in.data(), size}, attributes_in_request, out, counters);
    std::memmove(in.data(), in.data() + consumed, size - consumed);
    size -= consumed;
    if (!out.empty()) {  // pipelined requests: all their replies, in order, in one write
      auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(out), kAwait);
      if (write_error) break;
      out.clear();
    }
  }
  boost::system::error_code ignored;
  socket.shutdown(Protocol::socket::shutdown_both, ignored);
}

// One acceptor; each accepted socket is born on the next thread's io_context (round robin) and
// served there for its whole life.
asio::awaitable<void> acceptLoop(Acceptor& acceptor, bool is_tcp,
                                 std::vector<std::unique_ptr<asio::io_context>>& contexts,
                                 std::vector<ThreadCounters>& counters) {
  size_t next = 0;
  for (;;) {
    auto& context = *contexts[next];
    auto [error, socket] = co_await acceptor.async_accept(context, kAwait);
    if (error == asio::error::operation_aborted) co_return;
    if (error) continue;  // e.g. EMFILE: keep serving the connections we have
    if (is_tcp) {
      boost::system::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    asio::co_spawn(context, serveConnection(std::move(socket), counters[next]), asio::detached);
    next = (next + 1) % contexts.size();
  }
}

int runBaseline(const std::string& listen, unsigned thread_count) {
  auto endpoint = parseEndpoint(listen);
  if (!endpoint) {
    std::fprintf(stderr, "saslguard-baseline: --listen: %s\n", endpoint.error().c_str());
    return 2;
  }
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (unsigned i = 0; i < thread_count; ++i)
    contexts.push_back(std::make_unique<asio::io_context>(1));
  std::vector<ThreadCounters> counters(thread_count);

  Acceptor acceptor(*contexts[0]);
  boost::system::error_code error;
  if (!endpoint->is_tcp) std::filesystem::remove(listen.substr(5), error);  // a stale socket file
  acceptor.open(endpoint->address.protocol(), error);
  if (!error) acceptor.set_option(Acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint->address, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    std::fprintf(stderr, "saslguard-baseline: cannot listen on %s: %s\n", listen.c_str(),
                 error.message().c_str());
    return 2;
  }
  // The bound address (port 0 picks a free one): scripts wait for this line.
  std::printf("listening on %s\n", endpointText(acceptor.local_endpoint()).c_str());
  std::fflush(stdout);

  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) {
    for (auto& context : contexts) context->stop();
  });
  asio::co_spawn(*contexts[0], acceptLoop(acceptor, endpoint->is_tcp, contexts, counters),
                 asio::detached);

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& context : contexts) guards.push_back(asio::make_work_guard(*context));
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < thread_count; ++i) threads.emplace_back([&, i] { contexts[i]->run(); });
  contexts[0]->run();
  for (auto& thread : threads) thread.join();

  ThreadCounters total;
  for (auto& c : counters) {
    total.connections += c.connections;
    total.requests += c.requests;
    total.attributes += c.attributes;
    total.malformed_lines += c.malformed_lines;
  }
  std::fprintf(stderr,
               "saslguard-baseline: %llu requests (%llu attributes, %llu malformed lines) on %llu "
               "connections\n",
               static_cast<unsigned long long>(total.requests),
               static_cast<unsigned long long>(total.attributes),
               static_cast<unsigned long long>(total.malformed_lines),
               static_cast<unsigned long long>(total.connections));
  if (!endpoint->is_tcp) std::filesystem::remove(listen.substr(5), error);
  return 0;
}

}  // namespace
}  // namespace saslguard::bench

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:10041";
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  CLI::App app{
      "saslguard-baseline — minimal stateless Postfix policy server answering action=DUNNO, "
      "the ceiling to compare saslguard against.",
      "saslguard-baseline"};
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", listen, "host:port (port 0: any free port), [v6]:port or unix:/path");
  app.add_option("--threads,-t", threads, "threads, one event loop each (default: cores)")
      ->check(CLI::Range(1u, 1024u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  return saslguard::bench::runBaseline(listen, threads);
}
