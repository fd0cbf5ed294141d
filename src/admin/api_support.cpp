// api_support.cpp — see api_support.hpp.
#include "admin/api_support.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "common/strings.hpp"
#include "enrich/dns.hpp"
#include "enrich/ldap.hpp"
#include "protocol/parser.hpp"

// g++ 12 reports asio's coroutine frame delete as mismatched once a coroutine is inlined into a
// lambda (a false positive: the frame's own operator new and delete are paired).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace saslguard::admin {

namespace json = boost::json;

Response badRequest(std::string_view message) {
  return Response::error(400, message);
}

Result<json::value> jsonBody(const Request& request) {
  const auto type = toLowerAscii(
      trim(std::string_view(request.content_type).substr(0, request.content_type.find(';'))));
  if (type != "application/json") {
    return fail("Content-Type must be application/json (got '" +
                (request.content_type.empty() ? std::string("none") : request.content_type) + "')");
  }
  if (request.body.empty()) return fail("the request body is empty; expected a JSON object");
  boost::system::error_code ec;
  auto value = json::parse(request.body, ec);
  if (ec) return fail("the request body is not valid JSON: " + ec.message());
  return value;
}

std::optional<std::string> stringField(const json::value& object, std::string_view name) {
  if (!object.is_object()) return std::nullopt;
  const auto* value = object.as_object().if_contains(name);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return std::string(value->as_string());
}

boost::asio::awaitable<Result<std::string>> accountFor(const engine::Pipeline& pipeline,
                                                       std::string_view name) {
  auto account = pipeline.identity().normalise(name);
  const auto& mapper = pipeline.ldapMapper();
  if (mapper == nullptr || account.empty()) co_return account;
  const auto answer = co_await mapper->map(account);
  switch (answer.status) {
    case enrich::LdapStatus::kMapped:
      co_return answer.account;
    case enrich::LdapStatus::kNotFound:
      co_return account;
    case enrich::LdapStatus::kFailed:
      break;
  }
  co_return fail("LDAP mapping of the account failed: " + answer.error);
}

boost::asio::awaitable<Result<std::string>> PolicyRunner::run(
    const std::map<std::string, std::string>& attributes) {
  auto pipeline = context_->pipeline();
  std::string text = "request=smtpd_access_policy\nprotocol_state=RCPT\n";
  for (const auto& [name, value] : attributes) {
    if (value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
      co_return fail(name + " must be one line of text");
    }
    text += name + "=" + value + "\n";
  }
  text += "instance=api." + std::to_string(next_instance_++) + "\n\n";
  protocol::RequestParser parser;
  protocol::Request request;
  if (parser.parse(text, request).status != protocol::ParseStatus::Complete) {
    co_return fail("the values do not form a valid policy request");
  }
  if (enrichers_pipeline_ != pipeline.get()) {
    enrichers_pipeline_ = pipeline.get();
    enrichers_ = {};
    if (pipeline->hasLookups()) {
      auto dns = enrich::DnsResolver::create(*context_->context, pipeline->dnsOptions(),
                                             pipeline->dnsCache());
      if (dns) {
        enrichers_.dns = std::move(*dns);
      } else {
        spdlog::error("admin API: DNS resolver unusable, reputation lookups fail: {}",
                      dns.error().message);
      }
    }
  }
  const auto now = context_->now();
  std::string reply;
  if (pipeline->needsLookups(request, now)) {
    const auto lookups = co_await pipeline->lookups(request, now, enrichers_);
    pipeline->decide(request, now, reply, &lookups);
  } else {
    pipeline->decide(request, now, reply);
  }
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  co_return reply;
}

}  // namespace saslguard::admin
