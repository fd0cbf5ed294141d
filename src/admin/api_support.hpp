// api_support.hpp — what the admin API's handlers share: JSON bodies checked with a clear 400,
// account names normalised and mapped like a policy request's, and the pipeline run on a
// request the API builds (geoip-policyd's /dovecotpolicy and recording /query).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "admin/api.hpp"
#include "engine/detector.hpp"

namespace saslguard::admin {

// The parsed body, or the 400 to answer: a Content-Type other than application/json, an empty
// body, or text that is not JSON.
Result<boost::json::value> jsonBody(const Request& request);
Response badRequest(std::string_view message);

// A string field of an object; nullopt when missing or not a string.
std::optional<std::string> stringField(const boost::json::value& object, std::string_view name);

// The account a name belongs to, as a policy request would see it: normalised (case, domain
// stripping) and mapped through LDAP when [ldap] is on. An LDAP failure is an error.
boost::asio::awaitable<Result<std::string>> accountFor(const engine::Pipeline& pipeline,
                                                       std::string_view name);

// Runs the pipeline in force on a policy request built from `attributes` (request=
// smtpd_access_policy and protocol_state=RCPT are added), with its lookups, on the API's
// thread; the reply line ("action=...") is returned. Values with line breaks are refused.
class PolicyRunner {
 public:
  explicit PolicyRunner(std::shared_ptr<ApiContext> context) : context_(std::move(context)) {}
  boost::asio::awaitable<Result<std::string>> run(
      const std::map<std::string, std::string>& attributes);

 private:
  std::shared_ptr<ApiContext> context_;
  const engine::Pipeline* enrichers_pipeline_ = nullptr;
  engine::Enrichers enrichers_;  // a resolver on the API's thread, for the pipeline in force
  std::uint64_t next_instance_ = 1;
};

}  // namespace saslguard::admin
