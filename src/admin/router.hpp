// router.hpp — the admin API's requests, responses and the table that maps (method, path) to a
// handler. Transport-free: the HTTP server fills a Request and writes back the Response, so routes
// can be tested without a socket.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace saslguard::admin {

struct Request {
  std::string method;                        // "GET", "POST", ... as sent
  std::string path;                          // without the query string, not percent-decoded
  std::map<std::string, std::string> query;  // percent-decoded; a repeated key keeps the last value
  std::string body;
  std::string content_type;
  // "user" from basic auth, "token:abcd…" (first 4 characters) for a bearer token, "" when the
  // server runs on loopback without authentication.
  std::string caller;
  // For a route registered as "/prefix/{name}": the percent-decoded last segment.
  std::string path_parameter;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json(unsigned status, std::string body);
  // {"error": message} with the given status.
  static Response error(unsigned status, std::string_view message);
};

// Handlers run on the daemon's main event loop thread (the AdminServer's io_context): they must
// answer quickly and never block (no waiting on the network, no long loops).
using Handler = std::function<Response(const Request&)>;
// A handler that waits (an LDAP search, a DNS lookup, the policy pipeline): it runs as a
// coroutine on the same thread and must still bound its wait.
using AsyncHandler = std::function<boost::asio::awaitable<Response>(const Request&)>;

class Router {
 public:
  // `path` is exact ("/api/v1/stats"), or has one "{name}" segment ("/api/v1/accounts/{id}",
  // "/api/v1/accounts/{id}/held") that matches any single non-empty segment; the segment is
  // handed to the handler as Request::path_parameter. Exact paths win over parameter paths.
  void add(std::string method, std::string path, Handler handler);
  void addAsync(std::string method, std::string path, AsyncHandler handler);

  // (method, path) as registered, sorted: compared with the OpenAPI description.
  std::vector<std::pair<std::string, std::string>> routes() const;

  // Fills request.path_parameter and runs the handler; 404 for an unknown path, 405 with an Allow
  // header for a known path asked with another method.
  // An AsyncHandler route answers 500 here: serve those through dispatchAsync().
  Response dispatch(Request& request) const;
  // The same for every route, awaiting an AsyncHandler.
  boost::asio::awaitable<Response> dispatchAsync(Request& request) const;

 private:
  struct Route {
    Handler handler;  // one of the two is set
    AsyncHandler async_handler;
  };
  struct PathRoutes {
    std::map<std::string, Route> by_method;
    std::string prefix;  // a parameter route's text before and after its "{name}" segment
    std::string suffix;
  };
  void addRoute(std::string method, std::string path, Route route);
  const PathRoutes* find(const std::string& path, std::string& path_parameter) const;
  // The route for the request, or the 404/405 answer.
  const Route* match(Request& request, Response& refusal) const;

  std::map<std::string, PathRoutes> exact_;
  // "/api/v1/accounts/{id}" -> routes; tens of them, tried in turn
  std::map<std::string, PathRoutes> parameter_routes_;
};

// "%41b+c" -> "Ab c" when plus_is_space (query strings); malformed escapes are kept as they are.
std::string percentDecode(std::string_view text, bool plus_is_space);
std::map<std::string, std::string> parseQuery(std::string_view query);

}  // namespace saslguard::admin
