// openapi_test.cpp — docs/openapi.yaml and the routes the daemon registers are the same set of
// (method, path): a route added without its description, or described but gone, fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "admin/api.hpp"

namespace saslguard::admin {
namespace {

using Route = std::pair<std::string, std::string>;  // (METHOD, path)

// The "paths:" section of the spec: a path at two spaces of indentation, its methods at four.
std::set<Route> describedRoutes() {
  std::ifstream in(std::string(SASLGUARD_SOURCE_DIR) + "/docs/openapi.yaml");
  EXPECT_TRUE(in) << "docs/openapi.yaml is missing";
  const std::regex path_line(R"(^  (/[^:]*):\s*$)");
  const std::regex method_line(R"(^    (get|put|post|delete|patch|head|options):\s*$)");
  std::set<Route> routes;
  bool in_paths = false;
  std::string path;
  for (std::string line; std::getline(in, line);) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (!in_paths) continue;
    if (!line.empty() && line[0] != ' ') break;  // the next top-level key
    std::smatch match;
    if (std::regex_match(line, match, path_line)) {
      path = match[1];
    } else if (std::regex_match(line, match, method_line)) {
      std::string method = match[1];
      for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      routes.emplace(method, path);
    }
  }
  return routes;
}

std::set<Route> registeredRoutes() {
  auto context = std::make_shared<ApiContext>();
  context->metrics = [] { return std::string(); };  // a daemon always serves /metrics
  config::AdminSettings settings;
  settings.geoip_policyd_endpoints = true;
  const auto router = makeApiRouter(context, settings);
  std::set<Route> routes;
  for (const auto& [method, path] : router.routes()) routes.emplace(method, path);
  return routes;
}

TEST(OpenApi, DescribesExactlyTheRoutesTheDaemonRegisters) {
  const auto described = describedRoutes();
  const auto registered = registeredRoutes();
  ASSERT_GE(described.size(), 20u) << "the spec parser found too little";
  for (const auto& route : registered) {
    EXPECT_TRUE(described.count(route))
        << route.first << " " << route.second << " is served but not in docs/openapi.yaml";
  }
  for (const auto& route : described) {
    EXPECT_TRUE(registered.count(route))
        << route.first << " " << route.second << " is in docs/openapi.yaml but not served";
  }
}

TEST(OpenApi, GeoipPolicydRoutesOnlyWhenAsked) {
  auto context = std::make_shared<ApiContext>();
  config::AdminSettings settings;
  settings.geoip_policyd_endpoints = false;
  for (const auto& [method, path] : makeApiRouter(context, settings).routes()) {
    EXPECT_TRUE(path.starts_with("/api/v1") || path == "/livez" || path == "/readyz")
        << method << " " << path;
  }
}

}  // namespace
}  // namespace saslguard::admin
