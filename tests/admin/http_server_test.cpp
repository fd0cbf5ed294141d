// http_server_test.cpp — the admin HTTP server end to end over real sockets: routing, limits,
// authentication, TLS, timeouts and the connection cap. The server runs on its own thread, the
// clients are small Beast clients with a deadline on every exchange.
#include "admin/http_server.hpp"

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdlib>
#include <future>
#include <thread>

#include "admin/auth.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using HttpResponse = http::response<http::string_body>;

constexpr auto kExchangeDeadline = 10s;

Router echoRouter() {
  Router router;
  router.add("GET", "/livez",
             [](const Request&) { return Response::json(200, R"({"status":"ok"})"); });
  router.add("POST", "/echo",
             [](const Request& request) { return Response::json(201, request.body); });
  router.add("GET", "/echo", [](const Request& request) {
    boost::json::object query;
    for (const auto& [key, value] : request.query) query[key] = value;
    return Response::json(200, boost::json::serialize(boost::json::object{
                                   {"caller", request.caller}, {"query", query}}));
  });
  router.add("GET", "/accounts/{id}", [](const Request& request) {
    return Response::json(
        200, boost::json::serialize(boost::json::object{{"id", request.path_parameter}}));
  });
  return router;
}

// The server on its own io_context thread; stopped and joined when the test ends.
class RunningServer {
 public:
  Result<void> start(AdminOptions options, Router router = echoRouter()) {
    auto started = AdminServer::start(io_, std::move(options), std::move(router));
    if (!started) return fail(started.error().message);
    server_ = std::move(*started);
    thread_ = std::thread([this] { io_.run(); });
    return {};
  }
  ~RunningServer() {
    if (thread_.joinable()) {
      asio::post(io_, [this] {
        server_->stop();
        io_.stop();
      });
      thread_.join();
    }
  }
  unsigned short port() const { return server_->port(); }
  AdminCounters counters() {
    std::promise<AdminCounters> read;
    asio::post(io_, [&] { read.set_value(server_->counters()); });
    return read.get_future().get();
  }

 private:
  asio::io_context io_;
  AdminServerPtr server_;
  std::thread thread_;
};

AdminOptions loopbackOptions() {
  AdminOptions options;
  options.listen = "127.0.0.1:0";
  return options;
}

http::request<http::string_body> makeRequest(http::verb method, std::string target,
                                             std::string body = "") {
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::move(body);
  }
  request.prepare_payload();
  return request;
}

// Runs async operations on the client's own io_context so every exchange has a deadline.
template <class Stream>
class BasicClient {
 public:
  template <class... Args>
  explicit BasicClient(Args&&... args) : stream_(io_, std::forward<Args>(args)...) {}

  beast::error_code connect(unsigned short port) {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().connect({asio::ip::make_address("127.0.0.1"), port},
                                                      ec);
    return ec;
  }

  std::optional<HttpResponse> send(http::request<http::string_body> request) {
    HttpResponse response;
    beast::get_lowest_layer(stream_).expires_after(kExchangeDeadline);
    http::async_write(stream_, request, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        error = ec;
        return;
      }
      http::async_read(stream_, buffer_, response,
                       [&](beast::error_code read_error, std::size_t) { error = read_error; });
    });
    run();
    if (error) return std::nullopt;
    return response;
  }

  beast::error_code sendRaw(const std::string& bytes) {
    beast::get_lowest_layer(stream_).expires_after(kExchangeDeadline);
    asio::async_write(stream_, asio::buffer(bytes),
                      [&](beast::error_code ec, std::size_t) { error = ec; });
    run();
    return error;
  }

  // Waits until the server closes the connection (or the deadline passes: error::timeout).
  beast::error_code waitForClose() {
    beast::get_lowest_layer(stream_).expires_after(kExchangeDeadline);
    readUntilError();
    run();
    return error;
  }

  Stream& stream() { return stream_; }
  void run() {
    io_.restart();
    io_.run();
  }

  beast::error_code error;

 private:
  void readUntilError() {
    stream_.async_read_some(asio::buffer(sink_), [this](beast::error_code ec, std::size_t) {
      if (ec) {
        error = ec;
        return;
      }
      readUntilError();
    });
  }

  asio::io_context io_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::array<char, 4096> sink_{};
};

using Client = BasicClient<beast::tcp_stream>;

std::optional<HttpResponse> getOnce(unsigned short port, http::request<http::string_body> request) {
  Client client;
  if (client.connect(port)) return std::nullopt;
  return client.send(std::move(request));
}

std::string basicHeader(const std::string& user_colon_password) {
  std::string encoded;
  encoded.resize(beast::detail::base64::encoded_size(user_colon_password.size()));
  encoded.resize(beast::detail::base64::encode(encoded.data(), user_colon_password.data(),
                                               user_colon_password.size()));
  return "Basic " + encoded;
}

TEST(AdminHttpServer, AnswersGetAndPostWithJson) {
  RunningServer server;
  ASSERT_TRUE(server.start(loopbackOptions()));

  auto live = getOnce(server.port(), makeRequest(http::verb::get, "/livez"));
  ASSERT_TRUE(live);
  EXPECT_EQ(live->result_int(), 200u);
  EXPECT_EQ(live->body(), R"({"status":"ok"})");
  EXPECT_EQ((*live)[http::field::content_type], "application/json");

  auto posted = getOnce(server.port(), makeRequest(http::verb::post, "/echo", R"({"a":[1,2]})"));
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->result_int(), 201u);
  EXPECT_EQ(posted->body(), R"({"a":[1,2]})");

  auto queried = getOnce(server.port(), makeRequest(http::verb::get, "/echo?x=a%40b&y=1+2"));
  ASSERT_TRUE(queried);
  EXPECT_EQ(queried->body(), R"({"caller":"","query":{"x":"a@b","y":"1 2"}})");

  auto account =
      getOnce(server.port(), makeRequest(http::verb::get, "/accounts/bob%40example.org"));
  ASSERT_TRUE(account);
  EXPECT_EQ(account->body(), R"({"id":"bob@example.org"})");
}

// A handler that waits (as an LDAP search does) does not hold other requests up: they run on the
// same thread while it is suspended.
TEST(AdminHttpServer, AnAwaitingHandlerLeavesTheLoopFreeForOthers) {
  auto router = echoRouter();
  router.addAsync("GET", "/slow", [](const Request&) -> asio::awaitable<Response> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1500ms);
    co_await timer.async_wait(asio::use_awaitable);
    co_return Response::json(200, R"({"slow":true})");
  });
  RunningServer server;
  ASSERT_TRUE(server.start(loopbackOptions(), std::move(router)));
  auto slow = std::async(std::launch::async, [&] {
    return getOnce(server.port(), makeRequest(http::verb::get, "/slow"));
  });
  std::this_thread::sleep_for(100ms);  // the slow request is waiting in its handler
  const auto started = std::chrono::steady_clock::now();
  auto quick = getOnce(server.port(), makeRequest(http::verb::get, "/livez"));
  const auto quick_time = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->result_int(), 200u);
  EXPECT_LT(quick_time, 1s) << "answered while the slow handler waited";
  auto slow_answer = slow.get();
  ASSERT_TRUE(slow_answer);
  EXPECT_EQ(slow_answer->body(), R"({"slow":true})");

  // dispatch() (no waiting) refuses an awaiting route instead of blocking.
  Router only_async;
  only_async.addAsync("GET", "/a", [](const Request&) -> asio::awaitable<Response> {
    co_return Response::json(200, "{}");
  });
  Request request;
  request.method = "GET";
  request.path = "/a";
  EXPECT_EQ(only_async.dispatch(request).status, 500u);
}

TEST(AdminHttpServer, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  RunningServer server;
  ASSERT_TRUE(server.start(loopbackOptions()));

  auto missing = getOnce(server.port(), makeRequest(http::verb::get, "/nope"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->result_int(), 404u);
  EXPECT_EQ(missing->body(), R"({"error":"not found"})");

  auto missing_id = getOnce(server.port(), makeRequest(http::verb::get, "/accounts/"));
  ASSERT_TRUE(missing_id);
  EXPECT_EQ(missing_id->result_int(), 404u);

  auto wrong = getOnce(server.port(), makeRequest(http::verb::delete_, "/echo"));
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->result_int(), 405u);
  EXPECT_EQ((*wrong)[http::field::allow], "GET, POST");
}

TEST(AdminHttpServer, RoutesAreListedForTheApiDescription) {
  const auto routes = echoRouter().routes();
  const std::vector<std::pair<std::string, std::string>> expected{
      {"GET", "/accounts/{id}"}, {"GET", "/echo"}, {"POST", "/echo"}, {"GET", "/livez"}};
  EXPECT_EQ(routes, expected);
}

TEST(AdminHttpServer, OversizedBodyIs413) {
  auto options = loopbackOptions();
  options.max_body_bytes = 1024;
  RunningServer server;
  ASSERT_TRUE(server.start(options));

  auto fits =
      getOnce(server.port(), makeRequest(http::verb::post, "/echo", std::string(1024, 'x')));
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->result_int(), 201u);

  auto too_big =
      getOnce(server.port(), makeRequest(http::verb::post, "/echo", std::string(200000, 'x')));
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->result_int(), 413u);
  EXPECT_FALSE(too_big->keep_alive());
}

TEST(AdminHttpServer, KeepsTheConnectionAliveBetweenRequests) {
  RunningServer server;
  ASSERT_TRUE(server.start(loopbackOptions()));
  Client client;
  ASSERT_FALSE(client.connect(server.port()));
  for (int i = 0; i < 3; ++i) {
    auto reply = client.send(makeRequest(http::verb::get, "/livez"));
    ASSERT_TRUE(reply) << "request " << i << ": " << client.error.message();
    EXPECT_EQ(reply->result_int(), 200u);
    EXPECT_TRUE(reply->keep_alive());
  }
  auto closing = makeRequest(http::verb::get, "/livez");
  closing.keep_alive(false);
  auto last = client.send(closing);
  ASSERT_TRUE(last);
  EXPECT_FALSE(last->keep_alive());
  EXPECT_EQ(client.waitForClose(), asio::error::eof);
}

TEST(AdminHttpServer, BasicAuthentication) {
  auto options = loopbackOptions();
  options.basic_user = "admin";
  options.basic_password = "s3cret";
  RunningServer server;
  ASSERT_TRUE(server.start(options));

  auto anonymous = getOnce(server.port(), makeRequest(http::verb::get, "/livez"));
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->result_int(), 401u);
  EXPECT_EQ((*anonymous)[http::field::www_authenticate], R"(Basic realm="saslguard")");
  EXPECT_EQ(anonymous->body(), R"({"error":"authentication required"})");

  auto wrong = makeRequest(http::verb::get, "/livez");
  wrong.set(http::field::authorization, basicHeader("admin:s3cre"));
  auto refused = getOnce(server.port(), wrong);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->result_int(), 401u);

  auto wrong_user = makeRequest(http::verb::get, "/livez");
  wrong_user.set(http::field::authorization, basicHeader("root:s3cret"));
  EXPECT_EQ(getOnce(server.port(), wrong_user)->result_int(), 401u);

  auto right = makeRequest(http::verb::get, "/echo");
  right.set(http::field::authorization, basicHeader("admin:s3cret"));
  auto accepted = getOnce(server.port(), right);
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->result_int(), 200u);
  EXPECT_EQ(boost::json::parse(accepted->body()).at("caller").as_string(), "admin");

  EXPECT_EQ(server.counters().auth_failures, 3u);
}

TEST(AdminHttpServer, BearerToken) {
  auto options = loopbackOptions();
  options.bearer_tokens = {"first-token-value", "second-token-value"};
  RunningServer server;
  ASSERT_TRUE(server.start(options));

  auto request = makeRequest(http::verb::get, "/echo");
  request.set(http::field::authorization, "Bearer second-token-value");
  auto accepted = getOnce(server.port(), request);
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->result_int(), 200u);
  EXPECT_EQ(boost::json::parse(accepted->body()).at("caller").as_string(), "token:seco\u2026");

  request.set(http::field::authorization, "Bearer second-token-valu");
  EXPECT_EQ(getOnce(server.port(), request)->result_int(), 401u);
  request.set(http::field::authorization, basicHeader("second-token-value:"));
  EXPECT_EQ(getOnce(server.port(), request)->result_int(), 401u);
}

TEST(AdminHttpServer, DecodesBase64) {
  EXPECT_EQ(decodeBase64("YWRtaW46czNjcmV0"), "admin:s3cret");
  EXPECT_EQ(decodeBase64("YQ=="), "a");
  EXPECT_EQ(decodeBase64("YWI="), "ab");
  EXPECT_FALSE(decodeBase64("YW*="));
}

TEST(AdminHttpServer, RefusesToListenBeyondLoopbackWithoutAuthentication) {
  asio::io_context io;
  AdminOptions options;
  options.listen = "0.0.0.0:0";
  auto refused = AdminServer::start(io, options, Router{});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("0.0.0.0:0"), std::string::npos);
  EXPECT_NE(refused.error().message.find("authentication"), std::string::npos);

  options.bearer_tokens = {"a-long-random-token"};
  auto started = AdminServer::start(io, options, Router{});
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_NE((*started)->port(), 0);

  EXPECT_TRUE(isLoopbackHost("127.0.0.2"));
  EXPECT_TRUE(isLoopbackHost("::1"));
  EXPECT_TRUE(isLoopbackHost("localhost"));
  EXPECT_FALSE(isLoopbackHost("::"));
  EXPECT_FALSE(isLoopbackHost("192.0.2.1"));
}

TEST(AdminHttpServer, FailsOnATakenPortAndUnreadableTlsFiles) {
  asio::io_context io;
  auto first = AdminServer::start(io, loopbackOptions(), Router{});
  ASSERT_TRUE(first);
  auto options = loopbackOptions();
  options.listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = AdminServer::start(io, options, Router{});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find(options.listen), std::string::npos);

  auto tls = loopbackOptions();
  tls.tls_cert_file = "/nonexistent/cert.pem";
  tls.tls_key_file = "/nonexistent/key.pem";
  auto unreadable = AdminServer::start(io, tls, Router{});
  ASSERT_FALSE(unreadable);
  EXPECT_NE(unreadable.error().message.find("/nonexistent/cert.pem"), std::string::npos);

  auto bad_listen = loopbackOptions();
  bad_listen.listen = "admin.example:80";
  EXPECT_FALSE(AdminServer::start(io, bad_listen, Router{}));
}

TEST(AdminHttpServer, ServesHttpsWithTheConfiguredCertificate) {
  testing::TempDir dir;
  const auto key = (dir / "k.pem").string();
  const auto cert = (dir / "c.pem").string();
  const auto command = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " +
                       cert +
                       " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
                       ">/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);

  auto options = loopbackOptions();
  options.tls_cert_file = cert;
  options.tls_key_file = key;
  RunningServer server;
  ASSERT_TRUE(server.start(options));

  asio::ssl::context trust(asio::ssl::context::tls_client);
  trust.load_verify_file(cert);
  trust.set_verify_mode(asio::ssl::verify_peer);
  BasicClient<beast::ssl_stream<beast::tcp_stream>> client(trust);
  client.stream().set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  ASSERT_FALSE(client.connect(server.port()));
  client.stream().async_handshake(asio::ssl::stream_base::client,
                                  [&](beast::error_code ec) { client.error = ec; });
  beast::get_lowest_layer(client.stream()).expires_after(kExchangeDeadline);
  client.run();
  ASSERT_FALSE(client.error) << client.error.message();
  auto reply = client.send(makeRequest(http::verb::get, "/livez"));
  ASSERT_TRUE(reply) << client.error.message();
  EXPECT_EQ(reply->result_int(), 200u);
  EXPECT_EQ(reply->body(), R"({"status":"ok"})");

  // A plain-HTTP client gets no answer, only a closed connection.
  Client plain;
  ASSERT_FALSE(plain.connect(server.port()));
  EXPECT_FALSE(plain.send(makeRequest(http::verb::get, "/livez")));
}

TEST(AdminHttpServer, ClosesAHalfSentRequestAfterTheReadTimeoutWhileServingOthers) {
  auto options = loopbackOptions();
  options.read_timeout = 300ms;
  RunningServer server;
  ASSERT_TRUE(server.start(options));

  Client slow;
  ASSERT_FALSE(slow.connect(server.port()));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_FALSE(slow.sendRaw("GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n"));

  auto other = getOnce(server.port(), makeRequest(http::verb::get, "/livez"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->result_int(), 200u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 300ms) << "the other client waited";

  const auto closed = slow.waitForClose();
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_NE(closed, beast::error::timeout) << "not closed by the server";
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
  EXPECT_GE(server.counters().timeouts, 1u);
}

TEST(AdminHttpServer, ClosesAKeptAliveConnectionAfterTheIdleTimeout) {
  auto options = loopbackOptions();
  options.idle_timeout = 200ms;
  RunningServer server;
  ASSERT_TRUE(server.start(options));
  Client client;
  ASSERT_FALSE(client.connect(server.port()));
  auto reply = client.send(makeRequest(http::verb::get, "/livez"));
  ASSERT_TRUE(reply);
  EXPECT_TRUE(reply->keep_alive());
  const auto answered = std::chrono::steady_clock::now();
  EXPECT_EQ(client.waitForClose(), asio::error::eof);
  const auto idle = std::chrono::steady_clock::now() - answered;
  EXPECT_GE(idle, 150ms);
  EXPECT_LT(idle, 5s);
}

TEST(AdminHttpServer, ClosesAClientThatStopsReadingAfterTheWriteTimeout) {
  auto options = loopbackOptions();
  options.write_timeout = 300ms;
  Router router;
  // Far more than the kernel buffers of both ends hold, so the write has to wait for the client.
  router.add("GET", "/huge",
             [](const Request&) { return Response::json(200, std::string(64 << 20, ' ')); });
  RunningServer server;
  ASSERT_TRUE(server.start(options, std::move(router)));
  Client client;
  ASSERT_FALSE(client.connect(server.port()));
  ASSERT_FALSE(client.sendRaw("GET /huge HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  bool timed_out = false;
  for (int attempt = 0; attempt < 100 && !timed_out; ++attempt) {
    std::this_thread::sleep_for(100ms);
    timed_out = server.counters().timeouts >= 1;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(getOnce(server.port(), makeRequest(http::verb::get, "/huge/x")));  // still serving
}

TEST(AdminHttpServer, ClosesConnectionsBeyondMaxConnectionsAtOnce) {
  auto options = loopbackOptions();
  options.max_connections = 2;
  RunningServer server;
  ASSERT_TRUE(server.start(options));

  auto first = std::make_unique<Client>();
  Client second;
  for (Client* client : {first.get(), &second}) {
    ASSERT_FALSE(client->connect(server.port()));
    ASSERT_TRUE(client->send(makeRequest(http::verb::get, "/livez")));  // accepted and served
  }
  Client third;
  ASSERT_FALSE(third.connect(server.port()));
  EXPECT_FALSE(third.send(makeRequest(http::verb::get, "/livez")));
  EXPECT_EQ(server.counters().connections_refused, 1u);

  first.reset();  // frees a slot once the server sees the close
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    auto reply = getOnce(server.port(), makeRequest(http::verb::get, "/livez"));
    served = reply && reply->result_int() == 200u;
    if (!served) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace saslguard::admin
