// router_test.cpp — the route table without a socket: a {parameter} segment at the end of a path
// or inside it ("/accounts/{id}/held"), exact paths winning, and what never matches.
#include "admin/router.hpp"

#include <gtest/gtest.h>

namespace saslguard::admin {
namespace {

Router accountsRouter() {
  Router router;
  const auto answer = [](std::string name) {
    return [name](const Request& request) {
      return Response::json(200, name + ":" + request.path_parameter);
    };
  };
  router.add("GET", "/accounts/{id}", answer("show"));
  router.add("GET", "/accounts/{id}/held", answer("held"));
  router.add("POST", "/accounts/{id}/held/release", answer("release"));
  router.add("GET", "/accounts/special", answer("exact"));
  return router;
}

Response get(const Router& router, const std::string& method, const std::string& path) {
  Request request;
  request.method = method;
  request.path = path;
  return router.dispatch(request);
}

TEST(Router, ParameterSegmentAtTheEndOrInsideAPath) {
  const auto router = accountsRouter();
  EXPECT_EQ(get(router, "GET", "/accounts/alice%40example.org").body, "show:alice@example.org");
  EXPECT_EQ(get(router, "GET", "/accounts/alice%40example.org/held").body,
            "held:alice@example.org");
  EXPECT_EQ(get(router, "POST", "/accounts/bob/held/release").body, "release:bob");
  EXPECT_EQ(get(router, "GET", "/accounts/special").body, "exact:");  // exact paths win
  // An encoded slash stays inside the one segment it was sent in.
  EXPECT_EQ(get(router, "GET", "/accounts/a%2Fb/held").body, "held:a/b");
}

TEST(Router, WhatDoesNotMatch) {
  const auto router = accountsRouter();
  EXPECT_EQ(get(router, "GET", "/accounts/").status, 404u);          // empty segment
  EXPECT_EQ(get(router, "GET", "/accounts//held").status, 404u);     // empty segment
  EXPECT_EQ(get(router, "GET", "/accounts/a/b/held").status, 404u);  // two segments
  EXPECT_EQ(get(router, "GET", "/accounts/a/other").status, 404u);
  EXPECT_EQ(get(router, "GET", "/accounts/a/held/release").status, 405u);
  const auto routes = router.routes();
  const std::vector<std::pair<std::string, std::string>> expected{
      {"GET", "/accounts/special"},
      {"GET", "/accounts/{id}"},
      {"GET", "/accounts/{id}/held"},
      {"POST", "/accounts/{id}/held/release"}};
  EXPECT_EQ(routes, expected);
}

}  // namespace
}  // namespace saslguard::admin
