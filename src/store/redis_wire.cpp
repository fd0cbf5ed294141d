// redis_wire.cpp — see redis_wire.hpp. Also the RedisReply, RedisEndpoint and command-formatting
// helpers declared in redis_client.hpp, since they are pure wire format.
#include "store/redis_wire.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <cstdlib>

// g++ 12 flags Asio's awaitable frame allocator (its own operator new/delete pair) as
// mismatched once a coroutine is inlined enough; a known false positive (GCC bug 109224).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace saslguard::store {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

RedisReply convert(const redisReply* raw) {
  RedisReply reply;
  switch (raw->type) {
    case REDIS_REPLY_STRING:
      reply.type = RedisReply::Type::kString;
      reply.text.assign(raw->str, raw->len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = RedisReply::Type::kStatus;
      reply.text.assign(raw->str, raw->len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = RedisReply::Type::kError;
      reply.text.assign(raw->str, raw->len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = RedisReply::Type::kInteger;
      reply.integer = raw->integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = RedisReply::Type::kArray;
      reply.elements.reserve(raw->elements);
      for (std::size_t i = 0; i < raw->elements; ++i) {
        reply.elements.push_back(convert(raw->element[i]));
      }
      break;
    default:  // REDIS_REPLY_NIL
      reply.type = RedisReply::Type::kNil;
      break;
  }
  return reply;
}

}  // namespace

bool RedisReply::isErrorCode(std::string_view code) const {
  if (type != Type::kError || text.size() < code.size()) return false;
  return text.compare(0, code.size(), code) == 0 &&
         (text.size() == code.size() || text[code.size()] == ' ');
}

std::string RedisReply::describe() const {
  switch (type) {
    case Type::kString:
    case Type::kStatus:
      return text;
    case Type::kError:
      return "(error) " + text;
    case Type::kInteger:
      return "(integer) " + std::to_string(integer);
    case Type::kNil:
      return "(nil)";
    case Type::kArray: {
      std::string out = "[";
      for (std::size_t i = 0; i < elements.size(); ++i) {
        if (i > 0) out += ", ";
        out += elements[i].describe();
      }
      return out + "]";
    }
  }
  return "?";
}

std::string RedisEndpoint::describe() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<RedisEndpoint> parseRedisEndpoint(std::string_view text, unsigned short default_port) {
  RedisEndpoint endpoint;
  endpoint.port = default_port;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos)
      return fail("bad Redis address '" + std::string(text) + "'");
    endpoint.host = std::string(text.substr(1, close - 1));
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("bad Redis address '" + std::string(text) + "'");
      port_text = rest.substr(1);
    }
  } else if (const auto colon = text.rfind(':');
             colon != std::string_view::npos && text.find(':') == colon) {
    endpoint.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  } else {
    endpoint.host = std::string(text);  // a bare name, IPv4 or IPv6 address
  }
  if (endpoint.host.empty()) return fail("bad Redis address '" + std::string(text) + "'");
  if (!port_text.empty() || text.ends_with(':')) {
    unsigned port = 0;
    const auto [end, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (error != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return fail("bad port in Redis address '" + std::string(text) + "'");
    }
    endpoint.port = static_cast<unsigned short>(port);
  }
  return endpoint;
}

std::string formatRedisCommand(std::span<const std::string_view> args) {
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
  pointers.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    pointers.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* formatted = nullptr;
  const int length = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()),
                                            pointers.data(), lengths.data());
  if (length < 0 || formatted == nullptr) fatal("redisFormatCommandArgv: out of memory");
  std::string bytes(formatted, static_cast<std::size_t>(length));
  redisFreeCommand(formatted);
  return bytes;
}

RedisPipeline& RedisPipeline::add(std::span<const std::string_view> args) {
  bytes_ += formatRedisCommand(args);
  ++count_;
  return *this;
}

void addAuth(RedisPipeline& commands, const std::string& username, const std::string& password) {
  if (password.empty()) return;
  if (username.empty()) {
    commands.add({"AUTH", password});
  } else {
    commands.add({"AUTH", username, password});
  }
}

RedisReplyReader::RedisReplyReader() : reader_(redisReaderCreate()) {
  if (reader_ == nullptr) fatal("redisReaderCreate: out of memory");
}

RedisReplyReader::~RedisReplyReader() {
  redisReaderFree(reader_);
}

Result<void> RedisReplyReader::feed(const char* data, std::size_t size) {
  if (redisReaderFeed(reader_, data, size) != REDIS_OK) {
    return fail(std::string("Redis protocol error: ") + reader_->errstr);
  }
  return {};
}

Result<std::optional<RedisReply>> RedisReplyReader::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    return fail(std::string("Redis protocol error: ") + reader_->errstr);
  }
  if (raw == nullptr) return std::optional<RedisReply>();
  auto reply = convert(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return std::optional<RedisReply>(std::move(reply));
}

void RedisReplyReader::reset() {
  redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  if (reader_ == nullptr) fatal("redisReaderCreate: out of memory");
}

asio::awaitable<Result<tcp::endpoint>> resolveRedisEndpoint(asio::any_io_executor executor,
                                                            const RedisEndpoint& endpoint) {
  boost::system::error_code error;
  const auto address = asio::ip::make_address(endpoint.host, error);
  if (!error) co_return tcp::endpoint(address, endpoint.port);
  tcp::resolver resolver(executor);
  const auto results =
      co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port),
                                      asio::redirect_error(asio::use_awaitable, error));
  if (error || results.empty()) {
    co_return fail("cannot resolve Redis host '" + endpoint.host +
                   "': " + (error ? error.message() : std::string("no address")));
  }
  co_return results.begin()->endpoint();
}

asio::awaitable<Result<void>> sendAndConfirm(tcp::socket& socket, RedisReplyReader& reader,
                                             const RedisPipeline& commands) {
  boost::system::error_code error;
  const auto bytes = commands.bytes();
  co_await asio::async_write(socket, asio::buffer(bytes),
                             asio::redirect_error(asio::use_awaitable, error));
  if (error) co_return fail(error.message());
  std::array<char, 4096> buffer;
  for (std::size_t confirmed = 0; confirmed < commands.size();) {
    auto next = reader.next();
    if (!next) co_return fail(next.error().message);
    if (*next) {
      if ((*next)->isError()) co_return fail("Redis refused: " + (*next)->describe());
      ++confirmed;
      continue;
    }
    const auto received = co_await socket.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return fail(error.message());
    if (auto fed = reader.feed(buffer.data(), received); !fed) co_return fail(fed.error().message);
  }
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<RedisReply>>> exchangeOnce(asio::any_io_executor executor,
                                                              const RedisEndpoint& endpoint,
                                                              const RedisPipeline& commands,
                                                              SteadyClock::time_point deadline) {
  const auto address = co_await resolveRedisEndpoint(executor, endpoint);
  if (!address) co_return fail(address.error().message);

  // The guard closes the socket at the deadline, which ends whatever operation is pending. It
  // shares the socket and the flag, since its handler may run after this frame is gone.
  struct Exchange {
    explicit Exchange(asio::any_io_executor executor) : socket(executor), guard(executor) {}
    tcp::socket socket;
    asio::steady_timer guard;
    bool expired = false;
  };
  auto exchange = std::make_shared<Exchange>(executor);
  exchange->guard.expires_at(deadline);
  exchange->guard.async_wait([exchange](const boost::system::error_code& error) {
    if (error) return;
    exchange->expired = true;
    boost::system::error_code ignored;
    exchange->socket.close(ignored);
  });
  const auto where = endpoint.describe();
  auto failure = [&](const std::string& step, const boost::system::error_code& error) {
    exchange->guard.cancel();
    return fail(step + " " + where + ": " +
                (exchange->expired ? std::string("timed out") : error.message()));
  };

  boost::system::error_code error;
  co_await exchange->socket.async_connect(*address,
                                          asio::redirect_error(asio::use_awaitable, error));
  if (error || exchange->expired) co_return failure("cannot connect to", error);
  co_await asio::async_write(exchange->socket, asio::buffer(commands.bytes()),
                             asio::redirect_error(asio::use_awaitable, error));
  if (error || exchange->expired) co_return failure("cannot write to", error);

  RedisReplyReader reader;
  std::vector<RedisReply> replies;
  std::array<char, 4096> buffer{};
  while (replies.size() < commands.size()) {
    auto next = reader.next();
    if (!next) {
      exchange->guard.cancel();
      co_return fail(next.error().message + " from " + where);
    }
    if (*next) {
      replies.push_back(std::move(**next));
      continue;
    }
    const auto received = co_await exchange->socket.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, error));
    if (error || exchange->expired) co_return failure("no reply from", error);
    if (auto fed = reader.feed(buffer.data(), received); !fed) {
      exchange->guard.cancel();
      co_return fail(fed.error().message + " from " + where);
    }
  }
  exchange->guard.cancel();
  exchange->socket.close(error);
  co_return replies;
}

}  // namespace saslguard::store
