// admin_api_test.cpp — black box: the admin API of the built daemon through a real HTTP client
// (libcurl): health and metrics, authentication, the native accounts routes, geoip-policyd's
// endpoints with its request and response shapes, HTTPS with a self-signed certificate, a client
// that never finishes its request, and API calls while the policy port is busy.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <thread>

#include "support/child_process.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/mmdb.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

const std::string kGeoReject = "action=REJECT 5.7.1 Policy violation. Please contact your support";

json::value parsed(const HttpResponse& response) {
  boost::system::error_code ec;
  auto value = json::parse(response.body, ec);
  EXPECT_FALSE(ec) << "not JSON (status " << response.status << ", " << response.error
                   << "): " << response.body;
  return value;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A daemon with the admin API on a free loopback port, the geo detector on a generated database
// and a custom settings file; `extra` is appended to the configuration.
struct ApiSetup {
  TempDir dir;
  std::filesystem::path database = dir / "GeoLite2-Country.mmdb";
  std::filesystem::path custom = dir / "custom.json";
  std::filesystem::path config = dir / "saslguard.toml";

  std::unique_ptr<DaemonProcess> start(const std::string& extra = "",
                                       bool with_custom_file = true) {
    if (!std::filesystem::exists(database)) writeMmdb(database, defaultTestNetworks());
    if (with_custom_file && !std::filesystem::exists(custom)) {
      std::ofstream(custom)
          << R"({"data":[{"comment":"two countries","sender":"alice@example.org","ips":5,"countries":2},)"
          << R"({"sender":"bob@example.org","ips":3,"countries":1}]})";
    }
    std::ofstream out(config);
    out << "[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n"
        << extra << "\n[detectors.geo]\nenabled = true\nmax_countries = 2\nblock_permanent = true\n"
        << "database = \"" << database.string() << "\"\n";
    if (with_custom_file) out << "custom_settings_file = \"" << custom.string() << "\"\n";
    out.close();
    return std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", config.string(), "--listen", "127.0.0.1:0",
                                 "--state-dir", (dir / "state").string()},
        dir / ("daemon-" + std::to_string(++starts) + ".log"));
  }
  int starts = 0;  // each start logs to its own file, so the ready line read is this one's
};

TEST(AdminApi, HealthMetricsAndTheNativeAccountRoutes) {
  ApiSetup setup;
  auto daemon = setup.start();
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto port = daemon->adminPort();
  ASSERT_NE(port, 0) << daemon->log();

  EXPECT_EQ(httpGet(port, "/livez").status, 200);
  auto ready = httpGet(port, "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(httpGet(port, "/nowhere").status, 404);
  auto wrong_method = httpJson(port, "DELETE", "/livez", "{}");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.headers["allow"], "GET");

  // A policy request marks alice (three countries, limit 2, block_permanent).
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(postfixRequest("alice@example.org", std::string(kGbAddress))),
            "action=DUNNO");
  EXPECT_EQ(client->ask(postfixRequest("alice@example.org", std::string(kSeAddress))),
            "action=DUNNO");
  EXPECT_EQ(client->ask(postfixRequest("carol@example.org", std::string(kCnAddress))),
            "action=DUNNO");
  // alice's custom entry allows 2 countries: the third fires.
  EXPECT_EQ(client->ask(postfixRequest("alice@example.org", std::string(kCnAddress))), kGeoReject);

  auto metrics = httpGet(port, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers["content-type"].find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(
      metrics.body.find("saslguard_requests_total{protocol_state=\"RCPT\",action=\"reject\"} 1"),
      std::string::npos)
      << metrics.body.substr(0, 2000);

  // An operator block through the API, then the list, with a detector filter and paging.
  auto blocked =
      httpJson(port, "POST", "/api/v1/block/Dave@Example.org", R"({"reason":"phished"})");
  EXPECT_EQ(blocked.status, 200) << blocked.body;
  EXPECT_TRUE(parsed(blocked).at("new").as_bool());
  auto all = parsed(httpGet(port, "/api/v1/accounts"));
  ASSERT_EQ(all.at("accounts").as_array().size(), 2u) << all;
  EXPECT_EQ(all.at("accounts").at(0).at("account"), "alice@example.org");
  EXPECT_EQ(all.at("accounts").at(1).at("account"), "dave@example.org");
  auto geo_only = parsed(httpGet(port, "/api/v1/accounts?detector=geo"));
  ASSERT_EQ(geo_only.at("accounts").as_array().size(), 1u);
  EXPECT_EQ(geo_only.at("accounts").at(0).at("detector"), "geo");
  auto first_page = parsed(httpGet(port, "/api/v1/accounts?limit=1"));
  ASSERT_EQ(first_page.at("accounts").as_array().size(), 1u);
  ASSERT_TRUE(first_page.at("next").is_string());
  auto second_page = parsed(httpGet(
      port, "/api/v1/accounts?limit=1&after=" + std::string(first_page.at("next").as_string())));
  ASSERT_EQ(second_page.at("accounts").as_array().size(), 1u);
  EXPECT_EQ(second_page.at("accounts").at(0).at("account"), "dave@example.org");

  // One account: evidence, geo sets, recent decisions.
  auto alice = httpGet(port, "/api/v1/accounts/ALICE@example.org");
  ASSERT_EQ(alice.status, 200) << alice.body;
  auto view = parsed(alice);
  EXPECT_EQ(view.at("mark").at("detector"), "geo");
  EXPECT_EQ(view.at("mark").at("evidence").at("foreign_countries"), 3);
  EXPECT_FALSE(view.at("sets").as_array().empty());
  EXPECT_EQ(view.at("decisions").as_array().size(), 3u);
  EXPECT_EQ(httpGet(port, "/api/v1/accounts/nobody@example.org").status, 404);
  auto decisions = parsed(httpGet(port, "/api/v1/decisions/alice@example.org?limit=1"));
  EXPECT_EQ(decisions.at("decisions").as_array().size(), 1u);

  // Unblock with a reason: the mark and the geo state go, the next request passes.
  auto bad_body = httpJson(port, "POST", "/api/v1/unblock/alice@example.org", "{nope");
  EXPECT_EQ(bad_body.status, 400);
  auto unblocked =
      httpJson(port, "POST", "/api/v1/unblock/alice@example.org", R"({"reason":"password reset"})");
  ASSERT_EQ(unblocked.status, 200) << unblocked.body;
  EXPECT_TRUE(parsed(unblocked).at("mark_cleared").as_bool());
  EXPECT_EQ(parsed(unblocked).at("geo_sets_forgotten"), 2);  // foreign countries and IPs
  EXPECT_EQ(client->ask(postfixRequest("alice@example.org", std::string(kCnAddress))),
            "action=DUNNO");
  EXPECT_TRUE(daemon->waitForLog("account=alice@example.org unblocked by api@loopback"));
  auto after = parsed(httpGet(port, "/api/v1/accounts/alice@example.org"));
  EXPECT_TRUE(after.at("mark").is_null());
  EXPECT_EQ(after.at("audit").as_array().back().at("by"), "api@loopback");

  auto settings = parsed(httpGet(port, "/api/v1/settings"));
  EXPECT_EQ(settings.at("options").at("admin.enabled"), "true");
  EXPECT_NE(std::string(settings.at("toml").as_string()).find("[detectors.geo]"),
            std::string::npos);
  auto stats = parsed(httpGet(port, "/api/v1/stats"));
  EXPECT_EQ(stats.at("requests_total"), 5);
}

TEST(AdminApi, AuthenticationBasicAndBearerAndNoOpenApiOffLoopback) {
  ApiSetup setup;
  std::ofstream(setup.dir / "password") << "s3cret\n";
  std::ofstream(setup.dir / "tokens") << "token-one\n\ntoken-two\n";
  auto daemon = setup.start("basic_user = \"ops\"\nbasic_password_file = \"" +
                            (setup.dir / "password").string() + "\"\nbearer_tokens_file = \"" +
                            (setup.dir / "tokens").string() + "\"\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto url = "http://127.0.0.1:" + std::to_string(daemon->adminPort()) + "/api/v1/accounts";

  HttpRequest request;
  request.url = url;
  auto anonymous = httpRequest(request);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.headers["www-authenticate"], "Basic realm=\"saslguard\"");
  request.user = "ops";
  request.password = "wrong";
  EXPECT_EQ(httpRequest(request).status, 401);
  request.password = "s3cret";
  EXPECT_EQ(httpRequest(request).status, 200);
  request.user.clear();
  request.bearer = "token-two";
  EXPECT_EQ(httpRequest(request).status, 200);
  request.bearer = "token-three";
  EXPECT_EQ(httpRequest(request).status, 401);
  EXPECT_TRUE(daemon->waitForLog("admin API: authentication failed"));
  EXPECT_EQ(daemon->log().find("s3cret"), std::string::npos) << "a secret reached the log";

  // Listening beyond loopback without credentials: refused at start, a configuration error.
  TempDir open;
  std::ofstream(open / "open.toml") << "[admin]\nenabled = true\nlisten = \"0.0.0.0:0\"\n";
  DaemonProcess refused({"--config", (open / "open.toml").string(), "--listen", "127.0.0.1:0",
                         "--state-dir", (open / "state").string()},
                        open / "daemon.log");
  EXPECT_FALSE(refused.ready());
  EXPECT_EQ(refused.wait(), 78) << refused.log();
  EXPECT_NE(refused.log().find("authentication"), std::string::npos) << refused.log();
}

TEST(AdminApi, GeoipPolicydEndpointsKeepTheirShapes) {
  ApiSetup setup;
  auto daemon = setup.start();
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto port = daemon->adminPort();

  // GET /custom-settings: the data entries.
  auto custom = httpGet(port, "/custom-settings");
  ASSERT_EQ(custom.status, 200);
  auto entries = parsed(custom);
  ASSERT_EQ(entries.as_array().size(), 2u);
  EXPECT_EQ(entries.at(0).at("sender"), "alice@example.org");
  EXPECT_EQ(entries.at(0).at("countries"), 2);

  // Content type, JSON and fields are checked with a clear 400.
  HttpRequest wrong_type;
  wrong_type.method = "PUT";
  wrong_type.url = "http://127.0.0.1:" + std::to_string(port) + "/update";
  wrong_type.body = R"({"data":[]})";
  wrong_type.content_type = "text/plain";
  auto refused = httpRequest(wrong_type);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("Content-Type must be application/json"), std::string::npos);
  EXPECT_EQ(httpJson(port, "PUT", "/update", "{\"data\":[").status, 400);
  auto bad_entry = httpJson(port, "PUT", "/update", R"({"data":[{"sender":"x@y","ips":"ten"}]})");
  EXPECT_EQ(bad_entry.status, 400);
  EXPECT_NE(bad_entry.body.find("ips must be a whole number"), std::string::npos) << bad_entry.body;
  EXPECT_EQ(httpJson(port, "POST", "/remove", R"({"key":"client","value":"x"})").status, 400);
  EXPECT_EQ(httpJson(port, "POST", "/remove", R"({"key":"sender"})").status, 400);
  EXPECT_EQ(
      httpJson(port, "POST", "/query", R"({"key":"client","value":{"address":"1.2.3.4"}})").status,
      400);

  // PUT /update replaces, written to the file; PATCH /modify changes and appends (home
  // countries too); DELETE /remove keeps the order of the others.
  EXPECT_EQ(
      httpJson(
          port, "PUT", "/update",
          R"({"data":[{"sender":"a@x","ips":3,"countries":1},{"sender":"b@x","countries":1},{"sender":"c@x","ips":20}]})")
          .status,
      202);
  EXPECT_EQ(
      httpJson(
          port, "PATCH", "/modify",
          R"({"key":"sender","value":{"comment":"Test","sender":"a@x","ips":100,"countries":100,"home_countries":{"codes":["de"],"ips":4,"countries":1}}})")
          .status,
      202);
  EXPECT_EQ(httpJson(port, "PATCH", "/modify",
                     R"({"key":"sender","value":{"sender":"d@x","ips":0,"countries":5}})")
                .status,
            400)
      << "ips and countries must both be > 0";
  EXPECT_EQ(httpJson(port, "PATCH", "/modify",
                     R"({"key":"sender","value":{"sender":"d@x","ips":7,"countries":5}})")
                .status,
            202);
  EXPECT_EQ(httpJson(port, "DELETE", "/remove", R"({"key":"sender","value":"b@x"})").status, 202);
  EXPECT_EQ(httpJson(port, "DELETE", "/remove", R"({"key":"sender","value":"b@x"})").status, 400)
      << "no longer there";
  auto now = parsed(httpGet(port, "/custom-settings"));
  ASSERT_EQ(now.as_array().size(), 3u) << now;
  EXPECT_EQ(now.at(0).at("sender"), "a@x");
  EXPECT_EQ(now.at(0).at("ips"), 100);
  EXPECT_EQ(now.at(0).at("home_countries").at("codes").at(0), "DE");
  EXPECT_EQ(now.at(1).at("sender"), "c@x");
  EXPECT_EQ(now.at(2).at("sender"), "d@x");
  EXPECT_NE(readFile(setup.custom).find("\"d@x\""), std::string::npos)
      << "the file holds the change";

  // POST /query looks without recording: three foreign countries for an account with limit 2.
  const auto query = [&](const std::string& address, const std::string& sender) {
    return httpJson(port, "POST", "/query",
                    R"({"key":"client","value":{"address":")" + address + R"(","sender":")" +
                        sender + R"("}})");
  };
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(postfixRequest("erin@example.org", std::string(kGbAddress))),
            "action=DUNNO");
  EXPECT_EQ(client->ask(postfixRequest("erin@example.org", std::string(kSeAddress))),
            "action=DUNNO");
  auto answer = query(std::string(kCnAddress), "Erin@example.org");
  ASSERT_EQ(answer.status, 202) << answer.body;
  auto body = parsed(answer);
  EXPECT_EQ(body.at("operation"), "query");
  EXPECT_EQ(body.at("guid").as_string().size(), 27u);
  EXPECT_TRUE(body.at("error").is_null());
  EXPECT_FALSE(body.at("result").as_bool()) << body;
  EXPECT_TRUE(body.at("object").at("policy_reject").as_bool());
  EXPECT_EQ(body.at("object").at("current_country_code"), "CN");
  EXPECT_EQ(body.at("object").at("total_countries"), 3);
  auto state = parsed(httpGet(port, "/api/v1/accounts/erin@example.org"));
  EXPECT_TRUE(state.at("mark").is_null()) << "/query did not mark";
  for (const auto& set : state.at("sets").as_array()) {
    EXPECT_LE(set.at("entries").as_array().size(), 2u) << "/query did not record: " << set;
  }
  EXPECT_EQ(client->ask(postfixRequest("erin@example.org", std::string(kGbAddress))),
            "action=DUNNO");
  auto fine = parsed(query(std::string(kGbAddress), "erin@example.org"));
  EXPECT_TRUE(fine.at("result").as_bool());
  EXPECT_EQ(fine.at("object").at("total_countries"), 2);

  // POST /remove unblocks: geo state and mark.
  EXPECT_EQ(client->ask(postfixRequest("erin@example.org", std::string(kCnAddress))), kGeoReject);
  EXPECT_EQ(client->ask(postfixRequest("erin@example.org", std::string(kGbAddress))),
            "action=REJECT 5.7.1 This account is blocked; contact your support")
      << "block_permanent: the registry answers now";
  EXPECT_EQ(
      httpJson(port, "POST", "/remove", R"({"key":"sender","value":"erin@example.org"})").status,
      202);
  EXPECT_EQ(client->ask(postfixRequest("erin@example.org", std::string(kCnAddress))),
            "action=DUNNO");

  // /dovecotpolicy: allow runs the pipeline, report answers nothing to report.
  EXPECT_EQ(
      httpJson(port, "POST", "/dovecotpolicy?command=allow",
               R"({"login":"frank@example.org","remote":")" + std::string(kGbAddress) + R"("})")
          .body,
      R"({"status":0,"msg":"ok"})");
  EXPECT_EQ(httpJson(port, "POST", "/dovecotpolicy?command=allow",
                     R"({"login":"dave@example.org","remote":"192.0.2.1"})")
                .status,
            200);
  httpJson(port, "POST", "/api/v1/block/dave@example.org", "");
  EXPECT_EQ(parsed(httpJson(port, "POST", "/dovecotpolicy?command=allow",
                            R"({"login":"dave@example.org","remote":"192.0.2.1"})"))
                .at("status"),
            -1);
  EXPECT_EQ(httpJson(port, "POST", "/dovecotpolicy?command=report", R"({"login":"x"})").body,
            R"({"status":0,"msg":"Nothing to report"})");
  EXPECT_EQ(httpJson(port, "POST", "/dovecotpolicy?command=other", "{}").status, 400);

  // GET /reload reads everything again, and the settings changed through the API stay.
  EXPECT_EQ(httpGet(port, "/reload").status, 202);
  EXPECT_EQ(parsed(httpGet(port, "/custom-settings")).as_array().size(), 3u);
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait(), 0);
  auto restarted = setup.start();
  ASSERT_TRUE(restarted->ready()) << restarted->log();
  EXPECT_EQ(parsed(httpGet(restarted->adminPort(), "/custom-settings")).as_array().size(), 3u);
}

TEST(AdminApi, WithoutACustomSettingsFileAndWithRecordingQueries) {
  ApiSetup setup;
  auto daemon = setup.start("query_records = true\n", false);
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto port = daemon->adminPort();
  EXPECT_EQ(httpGet(port, "/custom-settings").status, 204);
  auto update = httpJson(port, "PUT", "/update", R"({"data":[]})");
  EXPECT_EQ(update.status, 409);
  EXPECT_NE(update.body.find("custom_settings_file is not set"), std::string::npos);
  EXPECT_EQ(httpJson(port, "DELETE", "/remove", R"({"key":"sender","value":"x@y"})").status, 200);

  // query_records: /query counts like a policy request (and marks on the third country).
  const auto query = [&](std::string_view address) {
    return parsed(httpJson(port, "POST", "/query",
                           R"({"key":"client","value":{"address":")" + std::string(address) +
                               R"(","sender":"gina@example.org"}})"));
  };
  EXPECT_TRUE(query(kGbAddress).at("result").as_bool());
  EXPECT_TRUE(query(kSeAddress).at("result").as_bool());
  EXPECT_FALSE(query(kCnAddress).at("result").as_bool());
  auto state = parsed(httpGet(port, "/api/v1/accounts/gina@example.org"));
  EXPECT_EQ(state.at("mark").at("detector"), "geo") << state;
}

TEST(AdminApi, HttpsWithASelfSignedCertificate) {
  ApiSetup setup;
  const auto cert = setup.dir / "admin.pem";
  const auto key = setup.dir / "admin-key.pem";
  const auto made = std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
                                 "/CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
                                 key.string() + " -out " + cert.string() + " 2>/dev/null")
                                    .c_str());
  ASSERT_EQ(made, 0);
  auto daemon = setup.start("tls_cert_file = \"" + cert.string() + "\"\ntls_key_file = \"" +
                            key.string() + "\"\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  HttpRequest request;
  request.url = "https://127.0.0.1:" + std::to_string(daemon->adminPort()) + "/custom-settings";
  auto untrusted = httpRequest(request);
  EXPECT_EQ(untrusted.status, 0) << "an unknown CA is refused by the client";
  request.ca_file = cert.string();
  auto trusted = httpRequest(request);
  EXPECT_EQ(trusted.status, 200) << trusted.error;
  request.ca_file.clear();
  request.verify_tls = false;  // curl -k, as geoip-policyd's README does
  EXPECT_EQ(httpRequest(request).status, 200);
  request.url = "http://127.0.0.1:" + std::to_string(daemon->adminPort()) + "/custom-settings";
  EXPECT_NE(httpRequest(request).status, 200) << "plain HTTP is not served on the TLS port";
}

TEST(AdminApi, ASlowClientTimesOutWithoutHoldingOthersAndTheApiAnswersUnderPolicyLoad) {
  ApiSetup setup;
  auto daemon = setup.start("read_timeout_ms = 500\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto port = daemon->adminPort();

  // A client that sends half a request and then nothing.
  const int slow = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(slow, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string partial = "POST /remove HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
  ASSERT_EQ(::send(slow, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));

  // Policy load on four connections while the API is asked.
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      auto client = PolicyClient::connectTcp(daemon->port());
      if (!client) {
        ++failed;
        return;
      }
      for (int i = 0; !stop; ++i) {
        auto reply = client->ask(
            postfixRequest("load" + std::to_string(t) + "-" + std::to_string(i % 50) + "@x",
                           std::string(kGbAddress)));
        reply ? ++answered : ++failed;
      }
    });
  }
  int api_ok = 0;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    if (httpGet(port, "/api/v1/accounts").status == 200) ++api_ok;
  }
  const auto api_time = std::chrono::steady_clock::now() - started;
  stop = true;
  for (auto& thread : load) thread.join();
  EXPECT_EQ(api_ok, 100);
  EXPECT_GT(answered.load(), 100);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_LT(api_time, 30s) << "the slow client held the others";

  // The slow client is dropped at its read timeout.
  timeval tv{5, 0};
  ::setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buffer[512];
  const auto got = ::recv(slow, buffer, sizeof buffer, 0);
  EXPECT_LE(got, 0) << "closed without an answer (or reset)";
  ::close(slow);
}

}  // namespace
}  // namespace saslguard::testing
