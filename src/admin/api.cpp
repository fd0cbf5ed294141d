// api.cpp — the native routes: /livez, /readyz, /metrics and /api/v1 (accounts, marks,
// decisions, settings, reload, stats, held mail); geoip-policyd's routes are in geoip_policyd.cpp.
// Every change is durable in the store before the answer and logged with the caller's name.
#include "admin/api.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "admin/api_support.hpp"
#include "admin/geoip_policyd.hpp"
#include "admin/metrics_endpoint.hpp"
#include "common/strings.hpp"
#include "config/loader.hpp"
#include "config/options.hpp"
#include "engine/detectors/geo.hpp"
#include "engine/hold_queue_settings.hpp"
#include "metrics/metrics.hpp"
#include "notify/hold_queue.hpp"
#include "store/store_json.hpp"

// g++ 12 reports asio's coroutine frame delete as mismatched once a coroutine is inlined into a
// lambda (a false positive: the frame's own operator new and delete are paired).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace saslguard::admin {

namespace json = boost::json;

namespace {

constexpr std::size_t kDefaultPage = 100;
constexpr std::size_t kMaxPage = 1000;
// A filtered listing reads at most this many marks per request, so a rare detector cannot make
// one call walk the whole registry; the answer's "next" resumes where it stopped.
constexpr std::size_t kMaxScannedPerPage = 10000;

std::size_t pageSize(const Request& request) {
  const auto it = request.query.find("limit");
  if (it == request.query.end()) return kDefaultPage;
  std::size_t limit = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9' || limit > kMaxPage) return kMaxPage;
    limit = limit * 10 + static_cast<std::size_t>(c - '0');
  }
  return std::clamp<std::size_t>(limit, 1, kMaxPage);
}

std::string queryValue(const Request& request, const std::string& name) {
  const auto it = request.query.find(name);
  return it == request.query.end() ? std::string() : it->second;
}

Response storeFailure(std::string_view what, const Error& error) {
  spdlog::error("admin API: {}: {}", what, error.message);
  return Response::error(503, std::string(what) + ": " + error.message);
}

std::string callerName(const Request& request) {
  return request.caller.empty() ? "api@loopback" : "api:" + request.caller;
}

// An optional JSON body (reason, ...): absent is fine, anything else must be a JSON object.
Result<json::object> optionalObjectBody(const Request& request) {
  if (request.body.empty()) return json::object{};
  auto body = jsonBody(request);
  if (!body) return tl::unexpected(body.error());
  if (!body->is_object()) return fail("the request body must be a JSON object");
  return body->as_object();
}

json::array decisionsJson(engine::RecentDecisions& recent, const std::string& account,
                          std::size_t limit) {
  json::array out;
  for (const auto& record : recent.forAccount(account, limit)) {
    boost::system::error_code ec;
    auto parsed = json::parse(engine::formatDecision(record, true), ec);
    if (!ec) out.push_back(std::move(parsed));
  }
  return out;
}

class NativeApi {
 public:
  explicit NativeApi(std::shared_ptr<ApiContext> context) : context_(std::move(context)) {}

  static void addRoutes(Router& router, const std::shared_ptr<NativeApi>& self) {
    router.add("GET", "/livez",
               [](const Request&) { return Response::json(200, R"({"status":"alive"})"); });
    router.addAsync("GET", "/readyz", [self](const Request&) { return self->ready(); });
    if (self->context_->metrics) {
      router.add("GET", "/metrics", [self](const Request&) {
        Response response;
        response.content_type = std::string(kPrometheusContentType);
        response.body = self->context_->metrics();
        return response;
      });
    }
    router.addAsync("GET", "/api/v1/accounts",
                    [self](const Request& r) { return self->listOffLoop(r); });
    router.addAsync("GET", "/api/v1/accounts/{account}",
                    [self](const Request& r) { return self->show(r); });
    router.addAsync("POST", "/api/v1/unblock/{account}",
                    [self](const Request& r) { return self->unblock(r); });
    router.addAsync("POST", "/api/v1/block/{account}",
                    [self](const Request& r) { return self->block(r); });
    router.addAsync("GET", "/api/v1/decisions/{account}",
                    [self](const Request& r) { return self->decisions(r); });
    router.add("GET", "/api/v1/settings", [self](const Request&) { return self->settings(); });
    router.add("POST", "/api/v1/reload", [self](const Request& r) { return self->reload(r); });
    router.add("GET", "/api/v1/stats", [self](const Request&) { return self->stats(); });
    router.addAsync("GET", "/api/v1/accounts/{account}/held",
                    [self](const Request& r) { return self->held(r); });
    router.addAsync("POST", "/api/v1/accounts/{account}/held/release",
                    [self](const Request& r) { return self->heldAction(r, true); });
    router.addAsync("POST", "/api/v1/accounts/{account}/held/purge",
                    [self](const Request& r) { return self->heldAction(r, false); });
  }

 private:
  // Awaited: the store answers a read, over the network for Redis, and a frozen Redis must not
  // hold the loop that answers /livez meanwhile.
  boost::asio::awaitable<Response> ready() const {
    json::array problems;
    if (!context_->policy_ready || !context_->policy_ready()) {
      problems.push_back("policy listeners or worker threads are not answering");
    }
    std::string probe_account = "readyz.probe";
    auto probe = co_await context_->store->getMarkAsync(probe_account, context_->now());
    if (!probe) problems.push_back(json::string("state store: " + probe.error().message));
    if (!problems.empty()) {
      json::object out;
      out["status"] = "not ready";
      out["problems"] = std::move(problems);
      co_return Response::json(503, json::serialize(out));
    }
    co_return Response::json(200, R"({"status":"ready"})");
  }

  Response list(const Request& request) const {
    const auto limit = pageSize(request);
    const auto detector = queryValue(request, "detector");
    std::string after = queryValue(request, "after");
    json::array accounts;
    std::size_t scanned = 0;
    bool more = true;
    while (accounts.size() < limit && scanned < kMaxScannedPerPage) {
      const auto batch = detector.empty() ? limit - accounts.size() : std::size_t{500};
      auto marks = context_->store->listMarks(after, batch, context_->now());
      if (!marks) return storeFailure("listing marked accounts", marks.error());
      for (auto& [account, mark] : *marks) {
        after = account;
        ++scanned;
        if (!detector.empty() && mark.detector != detector) continue;
        auto entry = store::markToJson(mark);
        entry["account"] = account;
        accounts.push_back(std::move(entry));
        if (accounts.size() == limit) break;
      }
      if (marks->size() < batch) {
        more = false;
        break;
      }
    }
    json::object out{{"accounts", std::move(accounts)}};
    out["next"] = more ? json::value(after) : json::value(nullptr);
    return Response::json(200, json::serialize(out));
  }

  // The listing reads the store page by page with blocking calls: on the store-reads thread.
  boost::asio::awaitable<Response> listOffLoop(const Request& request) {
    auto work = [this, request] { return list(request); };
    co_return co_await onThread(store_reads_thread_, std::move(work));
  }

  boost::asio::awaitable<Response> show(const Request& request) {
    auto pipeline = context_->pipeline();
    auto account = co_await accountFor(*pipeline, request.path_parameter);
    if (!account) co_return Response::error(502, account.error().message);
    auto work = [store = context_->store, name = *account, now = context_->now()] {
      return store->view(name, now);
    };
    auto view = co_await onThread(store_reads_thread_, std::move(work));
    if (!view) co_return storeFailure("reading the account", view.error());
    auto out = store::accountViewToJson(*view);
    out["decisions"] = decisionsJson(*context_->recent, *account, 50);
    const bool known = view->mark || !view->counters.empty() || !view->sets.empty() ||
                       !view->audit.empty() || !out["decisions"].as_array().empty();
    if (!known) co_return Response::error(404, "no state for account " + *account);
    co_return Response::json(200, json::serialize(out));
  }

  boost::asio::awaitable<Response> unblock(const Request& request) const {
    auto body = optionalObjectBody(request);
    if (!body) co_return badRequest(body.error().message);
    auto pipeline = context_->pipeline();
    auto account = co_await accountFor(*pipeline, request.path_parameter);
    if (!account) co_return Response::error(502, account.error().message);
    std::string reason = "unblocked through the admin API";
    if (auto given = stringField(*body, "reason"); given && !given->empty()) reason = *given;
    bool forget_geo = true;
    if (const auto* flag = body->if_contains("forget_geo")) {
      if (!flag->is_bool()) co_return badRequest("forget_geo must be true or false");
      forget_geo = flag->as_bool();
    }
    const auto caller = callerName(request);
    const auto now = context_->now();
    store::ClearInfo info;
    info.by = caller;
    info.reason = reason;
    // Awaited (not blocking): with Redis frozen this waits up to command_timeout_ms while the
    // loop goes on serving every other request; the failure is a 503 with Redis' reason.
    auto cleared = co_await context_->store->clearAsync(*account, std::move(info), now);
    if (!cleared) co_return storeFailure("clearing the mark", cleared.error());
    std::size_t forgotten = 0;
    if (forget_geo) {
      std::string prefix(engine::GeoDetector::kSetPrefix);
      auto dropped = co_await context_->store->forgetSetsAsync(*account, std::move(prefix), now);
      if (!dropped) co_return storeFailure("forgetting the geo state", dropped.error());
      forgotten = *dropped;
    }
    spdlog::info("account={} unblocked by {} reason={} mark_cleared={} geo_sets_forgotten={}",
                 quoteForLog(*account), caller, quoteForLog(reason), *cleared, forgotten);
    co_return Response::json(200, json::serialize(json::object{{"account", *account},
                                                               {"mark_cleared", *cleared},
                                                               {"geo_sets_forgotten", forgotten}}));
  }

  boost::asio::awaitable<Response> block(const Request& request) const {
    auto body = optionalObjectBody(request);
    if (!body) co_return badRequest(body.error().message);
    auto pipeline = context_->pipeline();
    auto account = co_await accountFor(*pipeline, request.path_parameter);
    if (!account) co_return Response::error(502, account.error().message);
    const auto caller = callerName(request);
    const auto now = context_->now();
    store::Mark mark;
    mark.detector = "operator";
    mark.reason = stringField(*body, "reason").value_or("");
    if (mark.reason.empty()) mark.reason = "blocked through the admin API";
    mark.action = toUpperAscii(stringField(*body, "action").value_or("REJECT"));
    if (mark.action != "REJECT" && mark.action != "DEFER" && mark.action != "HOLD") {
      co_return badRequest("action must be REJECT, DEFER or HOLD");
    }
    mark.evidence = json::serialize(json::object{{"by", caller}});
    mark.first_seen = mark.last_seen = now;
    auto marked = co_await context_->store->markAsync(*account, mark, now);
    if (!marked) co_return storeFailure("marking the account", marked.error());
    spdlog::info("account={} blocked by {} action={} reason={}", quoteForLog(*account), caller,
                 mark.action, quoteForLog(mark.reason));
    auto out = store::markToJson(marked->mark);
    out["account"] = *account;
    out["new"] = marked->is_new;
    co_return Response::json(200, json::serialize(out));
  }

  boost::asio::awaitable<Response> decisions(const Request& request) const {
    auto pipeline = context_->pipeline();
    auto account = co_await accountFor(*pipeline, request.path_parameter);
    if (!account) co_return Response::error(502, account.error().message);
    co_return Response::json(
        200, json::serialize(json::object{
                 {"account", *account},
                 {"decisions", decisionsJson(*context_->recent, *account, pageSize(request))}}));
  }

  Response settings() const {
    auto pipeline = context_->pipeline();
    const auto& settings = pipeline->settings();
    json::object options;
    for (const auto& option : config::options()) {
      options[option.name()] = config::formatValue(option, settings);
    }
    return Response::json(
        200, json::serialize(json::object{
                 {"source", settings.source_path.empty() ? json::value(nullptr)
                                                         : json::value(settings.source_path)},
                 {"detectors", pipeline->detectorSummary()},
                 {"options", std::move(options)},
                 {"toml", config::effectiveToml(settings)}}));
  }

  Response reload(const Request& request) const {
    spdlog::info("admin API: reload requested by {}", callerName(request));
    if (auto reloaded = context_->reload(); !reloaded) {
      return Response::error(
          409, "reload rejected, running configuration kept: " + reloaded.error().message);
    }
    return Response::json(
        200, json::serialize(json::object{{"reloaded", true},
                                          {"detectors", context_->pipeline()->detectorSummary()}}));
  }

  Response stats() const {
    json::object counters;
    for (const auto& sample : metrics::snapshot()) counters[sample.name] = sample.value;
    const auto stats = context_->store->stats();
    counters["store_accounts"] = stats.accounts;
    counters["store_marks"] = stats.marks;
    counters["connections_open"] = metrics::gauges().connections_open.load();
    return Response::json(200, json::serialize(counters));
  }

  // Postfix's programs run on the hold-queue thread (bounded by postfix.command_timeout_ms each),
  // so the event loop keeps answering meanwhile.
  template <class Work>
  boost::asio::awaitable<std::invoke_result_t<Work>> onHoldQueueThread(Work work) {
    return onThread(hold_queue_thread_, std::move(work));
  }

  template <class Work>
  boost::asio::awaitable<std::invoke_result_t<Work>> onThread(boost::asio::thread_pool& thread,
                                                              Work work) {
    using Value = std::invoke_result_t<Work>;
    // Plain handlers, no coroutine lambda (g++ 12 miscompiles captures in those): the work runs
    // on `thread`, its value is posted back to the awaiting coroutine's executor.
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(Value)>(
        [&thread](auto handler, Work task) {
          auto executor = boost::asio::get_associated_executor(handler);
          boost::asio::post(
              thread, [handler = std::move(handler), task = std::move(task), executor]() mutable {
                auto value = task();
                boost::asio::post(
                    executor, [handler = std::move(handler), value = std::move(value)]() mutable {
                      std::move(handler)(std::move(value));
                    });
              });
        },
        boost::asio::use_awaitable, std::move(work));
  }

  boost::asio::awaitable<Response> held(const Request& request) {
    auto pipeline = context_->pipeline();
    auto account = co_await accountFor(*pipeline, request.path_parameter);
    if (!account) co_return Response::error(502, account.error().message);
    auto queue = engine::holdQueueFor(pipeline->settings());
    const std::string name = *account;
    auto work = [queue, name] { return queue.held(name); };
    auto listed = co_await onHoldQueueThread(std::move(work));
    if (!listed) co_return Response::error(502, "hold queue: " + listed.error().message);
    co_return Response::json(200, json::serialize(notify::heldToJson(*listed)));
  }

  boost::asio::awaitable<Response> heldAction(const Request& request, bool release) {
    auto body = optionalObjectBody(request);
    if (!body) co_return badRequest(body.error().message);
    bool dry_run = false;
    if (const auto* flag = body->if_contains("dry_run")) {
      if (!flag->is_bool()) co_return badRequest("dry_run must be true or false");
      dry_run = flag->as_bool();
    }
    auto pipeline = context_->pipeline();
    auto account = co_await accountFor(*pipeline, request.path_parameter);
    if (!account) co_return Response::error(502, account.error().message);
    auto queue = engine::holdQueueFor(pipeline->settings());
    const std::string name = *account;
    const auto caller = callerName(request);
    auto work = [queue, name, release, dry_run, caller] {
      return release ? queue.release(name, dry_run, caller) : queue.purge(name, dry_run, caller);
    };
    auto done = co_await onHoldQueueThread(std::move(work));
    if (!done) co_return Response::error(502, "hold queue: " + done.error().message);
    co_return Response::json(200, json::serialize(notify::actionToJson(*done)));
  }

  std::shared_ptr<ApiContext> context_;
  boost::asio::thread_pool hold_queue_thread_{1};
  // Blocking store reads (a listing, an account's view): with Redis they wait on the network, up
  // to redis.command_timeout_ms when it does not answer, and the loop must not.
  boost::asio::thread_pool store_reads_thread_{1};
};

}  // namespace

Router makeApiRouter(std::shared_ptr<ApiContext> context, const config::AdminSettings& settings) {
  Router router;
  // Each route holds the handler object, which lives as long as the router.
  auto native = std::make_shared<NativeApi>(context);
  router.add("GET", "/api/v1", [native](const Request&) {
    return Response::json(200, R"({"api":"saslguard","version":1})");
  });
  NativeApi::addRoutes(router, native);
  if (settings.geoip_policyd_endpoints) addGeoipPolicydRoutes(router, context, settings);
  return router;
}

}  // namespace saslguard::admin
