// geoip_policyd.hpp — geoip-policyd's REST endpoints with its requests, responses and status codes
// (/reload, /custom-settings, /remove, /query, /update, /modify, /dovecotpolicy), so the scripts
// its users call keep working. Where it had bugs this follows docs/admin-api.md instead.
#pragma once

#include <memory>

#include "admin/api.hpp"

namespace saslguard::admin {

void addGeoipPolicydRoutes(Router& router, std::shared_ptr<ApiContext> context,
                           const config::AdminSettings& settings);

}  // namespace saslguard::admin
