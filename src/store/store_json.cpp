// store_json.cpp — see store_json.hpp.
#include "store/store_json.hpp"

#include <boost/json.hpp>

namespace saslguard::store {

namespace json = boost::json;

json::object markToJson(const Mark& mark) {
  json::object out;
  out["detector"] = mark.detector;
  out["reason"] = mark.reason;
  boost::system::error_code ec;
  auto evidence = json::parse(mark.evidence, ec);
  if (ec || mark.evidence.empty()) {
    out["evidence"] = mark.evidence;
  } else {
    out["evidence"] = evidence;
  }
  out["action"] = mark.action;
  out["first_seen_ms"] = toUnixMs(mark.first_seen);
  out["last_seen_ms"] = toUnixMs(mark.last_seen);
  out["hits"] = mark.hits;
  if (mark.expires) {
    out["expires_ms"] = toUnixMs(*mark.expires);
  } else {
    out["expires_ms"] = nullptr;
  }
  return out;
}

json::object accountViewToJson(const AccountView& view) {
  json::object out;
  out["account"] = view.account;
  out["mark"] = view.mark ? json::value(markToJson(*view.mark)) : json::value(nullptr);
  json::array counters;
  for (const auto& c : view.counters) {
    counters.push_back(
        json::object{{"name", c.name}, {"window_s", c.window_s}, {"total", c.total}});
  }
  out["counters"] = std::move(counters);
  json::array sets;
  for (const auto& s : view.sets) {
    json::array entries;
    for (const auto& e : s.entries) {
      entries.push_back(json::object{{"value", e.value}, {"last_seen_ms", toUnixMs(e.last_seen)}});
    }
    sets.push_back(json::object{{"name", s.name}, {"entries", std::move(entries)}});
  }
  out["sets"] = std::move(sets);
  json::array audit;
  for (const auto& a : view.audit) {
    audit.push_back(json::object{{"at_ms", toUnixMs(a.at)},
                                 {"event", a.event},
                                 {"by", a.by},
                                 {"reason", a.reason},
                                 {"evidence", a.evidence}});
  }
  out["audit"] = std::move(audit);
  return out;
}

}  // namespace saslguard::store
