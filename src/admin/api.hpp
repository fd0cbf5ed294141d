// api.hpp — the admin API's routes bound to the running daemon: health checks, Prometheus
// metrics, the native /api/v1 (accounts, decisions, settings, reload) and geoip-policyd's REST
// endpoints. Handlers run on the daemon's main thread, where the pipeline in force is swapped.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "admin/router.hpp"
#include "common/clock.hpp"
#include "common/result.hpp"
#include "config/settings.hpp"
#include "engine/decision.hpp"
#include "engine/pipeline.hpp"
#include "store/store.hpp"

namespace saslguard::admin {

struct ApiContext {
  boost::asio::io_context* context = nullptr;  // the thread handlers run on (DNS lookups)
  store::Store* store = nullptr;
  engine::RecentDecisions* recent = nullptr;
  std::function<engine::PipelinePtr()> pipeline;  // the one in force
  // What SIGHUP does: reads the configuration again and swaps the pipeline; the error says why
  // it was rejected (the running configuration is kept then).
  std::function<Result<void>()> reload;
  // Policy listeners bound and every worker thread answering.
  std::function<bool()> policy_ready;
  std::function<std::string()> metrics;  // Prometheus text; empty: no /metrics route
  std::function<TimePoint()> now = [] { return Clock::now(); };
};

// Every route the settings ask for (geoip-policyd's only with geoip_policyd_endpoints).
Router makeApiRouter(std::shared_ptr<ApiContext> context, const config::AdminSettings& settings);

}  // namespace saslguard::admin
