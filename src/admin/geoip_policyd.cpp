// geoip_policyd.cpp — see geoip_policyd.hpp. Differences from geoip-policyd, on purpose: /query
// only looks unless admin.query_records is set; DELETE /remove keeps the order of the entries;
// PATCH /modify accepts home_countries; a change to the custom settings is written to
// custom_settings_file before the answer (so a reload or restart keeps it); POST /remove also
// clears the account's compromise mark; /reload never unblocks anyone.
#include "admin/geoip_policyd.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <random>

#include "admin/api_support.hpp"
#include "common/network.hpp"
#include "common/strings.hpp"
#include "engine/detectors/geo.hpp"
#include "protocol/parser.hpp"

// g++ 12 reports asio's coroutine frame delete as mismatched once a coroutine is inlined into a
// lambda (a false positive: the frame's own operator new and delete are paired).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace saslguard::admin {

namespace json = boost::json;

namespace {

constexpr std::string_view kRejectText = "Policy violation. Please contact your support";

Response accepted() {
  Response response;
  response.status = 202;
  response.content_type = "text/plain; charset=utf-8";
  return response;
}

Response emptyOk() {
  Response response;
  response.status = 200;
  response.content_type = "text/plain; charset=utf-8";
  return response;
}

std::string callerName(const Request& request) {
  return request.caller.empty() ? "api@loopback" : "api:" + request.caller;
}

// geoip-policyd answered with a KSUID: 27 base62 characters, time first, so they sort by time.
std::string newGuid(TimePoint now) {
  static constexpr std::string_view kDigits =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string out(27, '0');
  auto seconds = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  for (int i = 5; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kDigits[seconds % 62];
    seconds /= 62;
  }
  for (std::size_t i = 6; i < out.size(); ++i) out[i] = kDigits[random() % 62];
  return out;
}

// The geo detector of the pipeline in force, or null when it is off.
const engine::GeoDetector* geoDetector(const engine::Pipeline& pipeline) {
  return dynamic_cast<const engine::GeoDetector*>(pipeline.detector("geo"));
}

Response geoOff() {
  return Response::error(409, "the geo detector is not enabled (detectors.geo.enabled)");
}

// {"key":"sender","value":"<account>"}: the account, or the 400 to answer.
Result<std::string> senderValue(const json::value& body) {
  if (!body.is_object()) return fail("expected {\"key\":\"sender\",\"value\":\"<account>\"}");
  if (stringField(body, "key") != "sender") return fail("key must be \"sender\"");
  auto value = stringField(body, "value");
  if (!value || trim(*value).empty()) return fail("value must be a non-empty string");
  return *value;
}

// The attributes of the policy request the API runs for a login from an address. (Built outside
// the coroutines: g++ 12 rejects braced initializers with string literals inside one.)
std::map<std::string, std::string> policyAttributes(const std::string& login,
                                                    const std::string& address) {
  return {{"sasl_username", login}, {"sender", login}, {"client_address", address}};
}

class GeoipPolicydApi {
 public:
  GeoipPolicydApi(std::shared_ptr<ApiContext> context, bool query_records)
      : context_(context), query_records_(query_records), runner_(std::move(context)) {}

  static void addRoutes(Router& router, const std::shared_ptr<GeoipPolicydApi>& self) {
    router.add("GET", "/reload", [self](const Request& r) { return self->reload(r); });
    router.add("GET", "/custom-settings",
               [self](const Request&) { return self->customSettings(); });
    router.addAsync("POST", "/remove", [self](const Request& r) { return self->unblock(r); });
    router.add("DELETE", "/remove", [self](const Request& r) { return self->removeEntry(r); });
    router.addAsync("POST", "/query", [self](const Request& r) { return self->query(r); });
    router.add("PUT", "/update", [self](const Request& r) { return self->update(r); });
    router.add("PATCH", "/modify", [self](const Request& r) { return self->modify(r); });
    router.addAsync("POST", "/dovecotpolicy",
                    [self](const Request& r) { return self->dovecotPolicy(r); });
  }

 private:
  // GET /reload: what SIGHUP does (GeoIP database, custom settings, every other option).
  Response reload(const Request& request) {
    spdlog::info("admin API: reload requested by {} (GET /reload)", callerName(request));
    if (auto reloaded = context_->reload(); !reloaded) {
      return Response::error(500, "reload rejected: " + reloaded.error().message);
    }
    return accepted();
  }

  Response customSettings() {
    const auto* geo = geoDetector(*context_->pipeline());
    auto current = geo ? geo->customSettings()->current() : nullptr;
    if (current == nullptr) {
      Response response;
      response.status = 204;
      response.content_type = "text/plain; charset=utf-8";
      return response;
    }
    return Response::json(200, json::serialize(current->toJson()));
  }

  // Writes the new settings (file first, then memory) and logs who changed what.
  Response replaceSettings(const engine::GeoDetector& geo, engine::GeoCustomSettings settings,
                           const Request& request, std::string_view what) {
    const auto entries = settings.entries().size();
    if (auto replaced = geo.customSettings()->replace(std::move(settings)); !replaced) {
      spdlog::error("admin API: {} by {} failed: {}", what, callerName(request),
                    replaced.error().message);
      return Response::error(geo.customSettings()->path().empty() ? 409 : 500,
                             replaced.error().message);
    }
    spdlog::info("admin API: custom settings {} by {}; {} entr{} in {}", what, callerName(request),
                 entries, entries == 1 ? "y" : "ies", geo.customSettings()->path());
    return accepted();
  }

  // PUT /update: the whole {"data":[...]} replaces the settings.
  Response update(const Request& request) {
    auto body = jsonBody(request);
    if (!body) return badRequest(body.error().message);
    const auto* geo = geoDetector(*context_->pipeline());
    if (geo == nullptr) return geoOff();
    auto parsed = engine::GeoCustomSettings::parse(request.body, "PUT /update");
    if (!parsed) return badRequest(parsed.error().message);
    return replaceSettings(*geo, std::move(*parsed), request, "replaced (PUT /update)");
  }

  // PATCH /modify: {"key":"sender","value":{comment, sender, ips, countries[, home_countries]}}
  // changes the account's entry or appends one.
  Response modify(const Request& request) {
    auto body = jsonBody(request);
    if (!body) return badRequest(body.error().message);
    if (!body->is_object()) return badRequest("expected {\"key\":\"sender\",\"value\":{...}}");
    if (stringField(*body, "key") != "sender") {
      // geoip-policyd answered an empty 200 for any other key; scripts may rely on it.
      spdlog::warn("admin API: PATCH /modify with a key other than \"sender\" ignored");
      return emptyOk();
    }
    const auto* value = body->as_object().if_contains("value");
    if (value == nullptr || !value->is_object()) {
      return badRequest("value must be an object with sender, ips and countries");
    }
    auto entry = engine::GeoCustomSettings::parseEntry(*value, "PATCH /modify: value");
    if (!entry) return badRequest(entry.error().message);
    if (entry->ips <= 0 || entry->countries <= 0) {
      return badRequest("PATCH /modify: value: ips and countries must both be greater than 0");
    }
    const auto* geo = geoDetector(*context_->pipeline());
    if (geo == nullptr) return geoOff();
    const auto current = geo->customSettings()->current();
    auto entries = current ? current->entries() : std::vector<engine::GeoCustomEntry>{};
    const bool has_home = value->as_object().contains("home_countries");
    auto existing = std::find_if(entries.begin(), entries.end(),
                                 [&](const auto& e) { return e.sender == entry->sender; });
    if (existing == entries.end()) {
      entries.push_back(std::move(*entry));
    } else {
      existing->comment = entry->comment;
      existing->ips = entry->ips;
      existing->countries = entry->countries;
      if (has_home) {
        existing->home_codes = entry->home_codes;
        existing->home_ips = entry->home_ips;
        existing->home_countries = entry->home_countries;
      }
    }
    return replaceSettings(*geo, engine::GeoCustomSettings::fromEntries(std::move(entries)),
                           request, "modified (PATCH /modify)");
  }

  // DELETE /remove: drops the account's entry; the others keep their order (first match wins).
  Response removeEntry(const Request& request) {
    auto body = jsonBody(request);
    if (!body) return badRequest(body.error().message);
    auto sender = senderValue(*body);
    if (!sender) return badRequest(sender.error().message);
    const auto* geo = geoDetector(*context_->pipeline());
    const auto current = geo ? geo->customSettings()->current() : nullptr;
    if (current == nullptr) return emptyOk();  // nothing loaded, as geoip-policyd answered
    auto entries = current->entries();
    const auto account = toLowerAscii(trim(*sender));
    auto found = std::find_if(entries.begin(), entries.end(),
                              [&](const auto& e) { return e.sender == account; });
    if (found == entries.end()) {
      return badRequest("no custom settings entry for sender " + account);
    }
    entries.erase(found);
    return replaceSettings(*geo, engine::GeoCustomSettings::fromEntries(std::move(entries)),
                           request, "entry removed (DELETE /remove)");
  }

  // POST /remove: unblocks the account: its geo state and its compromise mark.
  boost::asio::awaitable<Response> unblock(const Request& request) {
    auto body = jsonBody(request);
    if (!body) co_return badRequest(body.error().message);
    auto sender = senderValue(*body);
    if (!sender) co_return badRequest(sender.error().message);
    auto pipeline = context_->pipeline();
    auto account = co_await accountFor(*pipeline, *sender);
    if (!account) co_return Response::error(500, account.error().message);
    const auto caller = callerName(request);
    const auto now = context_->now();
    // Awaited: a frozen Redis costs this request command_timeout_ms, not the event loop.
    std::string prefix(engine::GeoDetector::kSetPrefix);
    auto dropped = co_await context_->store->forgetSetsAsync(*account, std::move(prefix), now);
    if (!dropped) co_return Response::error(500, "state store: " + dropped.error().message);
    store::ClearInfo info;
    info.by = caller;
    info.reason = "unblocked through POST /remove";
    auto cleared = co_await context_->store->clearAsync(*account, std::move(info), now);
    if (!cleared) co_return Response::error(500, "state store: " + cleared.error().message);
    spdlog::info("account={} unblocked by {} (POST /remove) mark_cleared={} geo_sets_forgotten={}",
                 quoteForLog(*account), caller, *cleared, *dropped);
    co_return accepted();
  }

  // POST /query: {"key":"client","value":{"address":ip,"sender":account}}.
  boost::asio::awaitable<Response> query(const Request& request) {
    auto body = jsonBody(request);
    if (!body) co_return badRequest(body.error().message);
    if (!body->is_object() || stringField(*body, "key") != "client") {
      co_return badRequest("key must be \"client\"");
    }
    const auto* value = body->as_object().if_contains("value");
    const auto address = value ? stringField(*value, "address") : std::nullopt;
    const auto sender = value ? stringField(*value, "sender") : std::nullopt;
    if (!address || trim(*address).empty() || !sender || trim(*sender).empty()) {
      co_return badRequest("value must have the strings address and sender");
    }
    if (!parseAddress(trim(*address))) {
      co_return badRequest("address '" + *address + "' is not an IP address");
    }
    const auto client = std::string(trim(*address));
    const auto now = context_->now();
    json::object out{{"guid", newGuid(now)}, {"operation", "query"}};
    auto pipeline = context_->pipeline();
    const auto* geo = geoDetector(*pipeline);
    if (geo == nullptr) co_return geoOff();
    auto account = co_await accountFor(*pipeline, *sender);
    if (!account) {
      // geoip-policyd failed open on an internal error: result true, the error said.
      out["object"] = nullptr;
      out["error"] = json::object{{"message", account.error().message}};
      out["result"] = true;
      co_return Response::json(202, json::serialize(out));
    }

    // What the detector makes of this address for this account.
    const auto text =
        "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=" + *account +
        "\nclient_address=" + client + "\n\n";
    protocol::RequestParser parser;
    protocol::Request policy_request;
    if (*account != std::string(trim(*account)) ||
        account->find_first_of("\r\n=") != std::string::npos ||
        parser.parse(text, policy_request).status != protocol::ParseStatus::Complete) {
      co_return badRequest("sender is not a usable account name");
    }
    engine::Identity identity{*account, true};
    engine::DetectorContext detector_context{policy_request, identity, now};
    const auto described = geo->describe(detector_context);

    bool reject = false;
    std::string error;
    store::Batch batch;
    batch.account = *account;
    if (query_records_) {
      // As a policy request would: recorded, may mark, may notify.
      auto reply = co_await runner_.run(policyAttributes(*sender, client));
      if (!reply) co_return badRequest(reply.error().message);
      reject = !reply->starts_with("action=DUNNO") && !reply->starts_with("action=OK") &&
               !reply->starts_with("action=INFO");
    } else {
      geo->plan(detector_context, batch);
    }
    // One read of the account (its live mark included); after a recorded query it shows what
    // the query added.
    auto view = co_await context_->store->viewAsync(*account, now);
    if (!view) {
      error = view.error().message;
    } else if (!query_records_) {
      reject = view->mark.has_value();
      const auto results = simulate(*view, batch, now);
      const auto verdict =
          geo->evaluate(detector_context, engine::DetectorResults{{}, std::span(results.sets)});
      reject = reject || verdict.action != engine::Action::Dunno;
    }
    json::object object{{"remote_addr", client},
                        {"policy_reject", reject},
                        {"whitelisted", !described.counted || described.trusted},
                        {"current_client_ip", client},
                        {"current_country_code", described.country}};
    std::size_t total_ips = 0;
    std::size_t total_countries = 0;
    const auto seen = [&](std::string_view set_name, const std::string& this_request) {
      json::array values;
      bool included = this_request.empty();
      if (view) {
        for (const auto& set : view->sets) {
          if (set.name != set_name) continue;
          for (const auto& entry : set.entries) {
            values.push_back(json::string(entry.value));
            included = included || entry.value == this_request;
          }
        }
      }
      // Not recorded (/query only looks): shown as if it had been, as the decision counted it.
      if (!included) values.push_back(json::string(this_request));
      return values;
    };
    const bool counted = described.counted;
    const std::string none;
    auto home_ips = seen(engine::GeoDetector::kHomeIps,
                         counted && described.home ? described.client_key : none);
    auto foreign_ips = seen(engine::GeoDetector::kForeignIps,
                            counted && !described.home ? described.client_key : none);
    auto home_countries = seen(engine::GeoDetector::kHomeCountries,
                               counted && described.home ? described.country : none);
    auto foreign_countries = seen(engine::GeoDetector::kForeignCountries,
                                  counted && !described.home ? described.country : none);
    total_ips = home_ips.size() + foreign_ips.size();
    total_countries = home_countries.size() + foreign_countries.size();
    object["total_ips"] = total_ips;
    object["total_countries"] = total_countries;
    object["home_ips_seen"] = std::move(home_ips);
    object["foreign_ips_seen"] = std::move(foreign_ips);
    object["home_countries_seen"] = std::move(home_countries);
    object["foreign_countries_seen"] = std::move(foreign_countries);
    out["object"] = std::move(object);
    if (error.empty()) {
      out["error"] = nullptr;
    } else {
      spdlog::error("admin API: POST /query: {}", error);
      out["error"] = json::object{{"message", error}};
    }
    out["result"] = !reject;
    co_return Response::json(202, json::serialize(out));
  }

  // What store::execute would answer for the batch's set operations, from a view of the account
  // (nothing is written: /query only looks).
  static store::BatchResult simulate(const store::AccountView& view, const store::Batch& batch,
                                     TimePoint now) {
    store::BatchResult result;
    for (const auto& op : batch.sets) {
      store::SetResult set_result;
      bool member = false;
      for (const auto& set : view.sets) {
        if (set.name != op.name) continue;
        for (const auto& entry : set.entries) {
          if (now - entry.last_seen >= std::chrono::seconds(op.ttl_s)) continue;
          ++set_result.count;
          member = member || entry.value == op.value;
        }
      }
      if (!op.value.empty() && !member) {
        ++set_result.count;
        set_result.inserted = true;
      }
      result.sets.push_back(set_result);
    }
    return result;
  }

  // POST /dovecotpolicy?command=allow|report: Dovecot's auth policy request ("login", "remote").
  boost::asio::awaitable<Response> dovecotPolicy(const Request& request) {
    const auto command = request.query.find("command");
    if (command == request.query.end() ||
        (command->second != "allow" && command->second != "report")) {
      co_return badRequest("command must be allow or report");
    }
    auto body = jsonBody(request);
    if (!body) co_return badRequest(body.error().message);
    if (command->second == "report") {
      co_return Response::json(200, R"({"status":0,"msg":"Nothing to report"})");
    }
    const auto login = stringField(*body, "login");
    const auto remote = stringField(*body, "remote");
    if (!login || trim(*login).empty() || !remote || trim(*remote).empty()) {
      co_return badRequest("login and remote are required");
    }
    auto reply = co_await runner_.run(policyAttributes(*login, *remote));
    if (!reply) co_return badRequest(reply.error().message);
    const bool allowed = reply->starts_with("action=DUNNO") || reply->starts_with("action=OK") ||
                         reply->starts_with("action=INFO");
    if (allowed) co_return Response::json(200, R"({"status":0,"msg":"ok"})");
    co_return Response::json(200,
                             json::serialize(json::object{{"status", -1}, {"msg", kRejectText}}));
  }

  std::shared_ptr<ApiContext> context_;
  bool query_records_;
  PolicyRunner runner_;
};

}  // namespace

void addGeoipPolicydRoutes(Router& router, std::shared_ptr<ApiContext> context,
                           const config::AdminSettings& settings) {
  auto api = std::make_shared<GeoipPolicydApi>(std::move(context), settings.query_records);
  GeoipPolicydApi::addRoutes(router, api);
}

}  // namespace saslguard::admin
