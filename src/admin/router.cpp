// router.cpp — see router.hpp. Routes are few (tens), so plain ordered maps are enough and keep
// routes() sorted for free.
#include "admin/router.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <tuple>

namespace saslguard::admin {

Response Response::json(unsigned status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

Response Response::error(unsigned status, std::string_view message) {
  return json(status, boost::json::serialize(boost::json::object{{"error", message}}));
}

void Router::add(std::string method, std::string path, Handler handler) {
  addRoute(std::move(method), std::move(path), Route{std::move(handler), nullptr});
}

void Router::addAsync(std::string method, std::string path, AsyncHandler handler) {
  addRoute(std::move(method), std::move(path), Route{nullptr, std::move(handler)});
}

void Router::addRoute(std::string method, std::string path, Route route) {
  const auto open = path.find("/{");
  const auto close = open == std::string::npos ? std::string::npos : path.find('}', open);
  if (close != std::string::npos) {
    // "/prefix/{name}" or "/prefix/{name}/suffix": one segment in between.
    auto& routes = parameter_routes_[path];
    routes.prefix = path.substr(0, open + 1);
    routes.suffix = path.substr(close + 1);
    routes.by_method[std::move(method)] = std::move(route);
    return;
  }
  exact_[std::move(path)].by_method[std::move(method)] = std::move(route);
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> listed;
  for (const auto& [path, routes] : exact_) {
    for (const auto& [method, handler] : routes.by_method) listed.emplace_back(method, path);
  }
  for (const auto& [pattern, routes] : parameter_routes_) {
    for (const auto& [method, handler] : routes.by_method) listed.emplace_back(method, pattern);
  }
  std::sort(listed.begin(), listed.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second, a.first) < std::tie(b.second, b.first);
  });
  return listed;
}

const Router::PathRoutes* Router::find(const std::string& path, std::string& path_parameter) const {
  if (auto exact = exact_.find(path); exact != exact_.end()) return &exact->second;
  for (const auto& [pattern, routes] : parameter_routes_) {
    if (path.size() <= routes.prefix.size() + routes.suffix.size() ||
        !path.starts_with(routes.prefix) || !path.ends_with(routes.suffix)) {
      continue;
    }
    const auto segment = std::string_view(path).substr(
        routes.prefix.size(), path.size() - routes.prefix.size() - routes.suffix.size());
    if (segment.find('/') != std::string_view::npos) continue;
    path_parameter = percentDecode(segment, false);
    return &routes;
  }
  return nullptr;
}

const Router::Route* Router::match(Request& request, Response& refusal) const {
  const PathRoutes* routes = find(request.path, request.path_parameter);
  if (routes == nullptr) {
    refusal = Response::error(404, "not found");
    return nullptr;
  }
  auto route = routes->by_method.find(request.method);
  if (route == routes->by_method.end()) {
    std::string allow;
    for (const auto& [method, unused] : routes->by_method) {
      if (!allow.empty()) allow += ", ";
      allow += method;
    }
    refusal = Response::error(405, "method not allowed");
    refusal.headers.emplace_back("Allow", allow);
    return nullptr;
  }
  return &route->second;
}

Response Router::dispatch(Request& request) const {
  Response refusal;
  const Route* route = match(request, refusal);
  if (route == nullptr) return refusal;
  if (!route->handler) return Response::error(500, "route needs dispatchAsync");
  return route->handler(request);
}

boost::asio::awaitable<Response> Router::dispatchAsync(Request& request) const {
  Response refusal;
  const Route* route = match(request, refusal);
  if (route == nullptr) co_return refusal;
  if (route->handler) co_return route->handler(request);
  co_return co_await route->async_handler(request);
}

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percentDecode(std::string_view text, bool plus_is_space) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && plus_is_space) {
      decoded += ' ';
    } else if (c == '%' && i + 2 < text.size() && hexValue(text[i + 1]) >= 0 &&
               hexValue(text[i + 2]) >= 0) {
      decoded += static_cast<char>(hexValue(text[i + 1]) * 16 + hexValue(text[i + 2]));
      i += 2;
    } else {
      decoded += c;
    }
  }
  return decoded;
}

std::map<std::string, std::string> parseQuery(std::string_view query) {
  std::map<std::string, std::string> parameters;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto equals = pair.find('=');
    auto key = percentDecode(pair.substr(0, equals), true);
    auto value = equals == std::string_view::npos ? std::string{}
                                                  : percentDecode(pair.substr(equals + 1), true);
    parameters[std::move(key)] = std::move(value);
  }
  return parameters;
}

}  // namespace saslguard::admin
