// ldap_connection.cpp — see ldap_connection.hpp. Everything here blocks (libldap's synchronous
// API), which is why it runs on the pool's threads and never on the event loop.
#include "enrich/ldap_connection.hpp"

#include <ldap.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/strings.hpp"
#include "metrics/metrics.hpp"

namespace saslguard::enrich {
namespace {

// Two, not one: the server then tells us the filter matched more than one entry.
constexpr int kSizeLimit = 2;

timeval toTimeval(std::chrono::milliseconds duration) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(duration.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return value;
}

// What is left until `deadline`, at least 1 ms: libldap reads a zero timeout as "no limit".
std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

LdapAnswer failedAnswer(std::string error) {
  LdapAnswer answer;
  answer.status = LdapStatus::kFailed;
  answer.error = std::move(error);
  return answer;
}

int scopeCode(const std::string& scope) {
  if (scope == "base") return LDAP_SCOPE_BASE;
  if (scope == "one") return LDAP_SCOPE_ONELEVEL;
  return LDAP_SCOPE_SUBTREE;
}

// The codes after which the connection is useless: a fresh one (or the next URI) may work.
bool isConnectionError(int code) {
  return code == LDAP_SERVER_DOWN || code == LDAP_CONNECT_ERROR || code == LDAP_TIMEOUT;
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Cyrus SASL's sasl_interact_t (sasl/sasl.h; the development headers are not a build
// dependency). Its layout has been fixed since SASL v2.
struct SaslInteraction {
  unsigned long id;
  const char* challenge;
  const char* prompt;
  const char* defresult;
  const void* result;
  unsigned len;
};
constexpr unsigned long kSaslListEnd = 0;

// EXTERNAL asks at most for an authorization identity; the empty default means "the identity
// the TLS certificate or the ldapi peer credentials establish".
int acceptSaslDefaults(LDAP*, unsigned, void*, void* interactions) {
  for (auto* item = static_cast<SaslInteraction*>(interactions); item->id != kSaslListEnd; ++item) {
    const char* value = item->defresult != nullptr ? item->defresult : "";
    item->result = value;
    item->len = static_cast<unsigned>(std::strlen(value));
  }
  return LDAP_SUCCESS;
}

}  // namespace

std::string ldapFilterFor(const std::string& filter_template, std::string_view identity) {
  const auto escaped = escapeFilterValue(identity);
  std::string filter;
  filter.reserve(filter_template.size() + 3 * escaped.size());
  for (std::size_t i = 0; i < filter_template.size(); ++i) {
    if (filter_template[i] == '%' && i + 1 < filter_template.size() &&
        filter_template[i + 1] == 's') {
      filter += escaped;
      ++i;
    } else {
      filter += filter_template[i];
    }
  }
  return filter;
}

void LdapConnection::close() {
  if (handle_ == nullptr) return;
  ldap_unbind_ext_s(handle_, nullptr, nullptr);
  handle_ = nullptr;
}

LdapConnection::Failure LdapConnection::failure(int code, const std::string& what) const {
  std::string message = what + ": " + ldap_err2string(code);
  char* diagnostic = nullptr;
  if (handle_ != nullptr &&
      ldap_get_option(handle_, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diagnostic) == LDAP_OPT_SUCCESS &&
      diagnostic != nullptr) {
    // A failed TLS handshake leaves only "(unknown error code)" here (GnuTLS's reason is not
    // passed on), which says nothing.
    const std::string_view text(diagnostic);
    if (!text.empty() && text != "(unknown error code)") message += " (" + std::string(text) + ")";
    ldap_memfree(diagnostic);
  }
  return Failure{code, std::move(message)};
}

LdapAnswer LdapConnection::lookUp(std::string_view identity, Deadline deadline) {
  const auto now = std::chrono::steady_clock::now();
  const bool pool_reconnected =
      pool_connects_ != nullptr && pool_connects_->load() != pool_connects_seen_;
  if (!connected() && now < retry_at_ && !pool_reconnected) {
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now);
    return failedAnswer("no LDAP connection (next attempt in " + std::to_string(wait.count()) +
                        " ms; the last one failed: " + last_connect_error_ + ")");
  }
  const auto filter = ldapFilterFor(options_.filter, identity);
  Failure last{LDAP_TIMEOUT, "LDAP: the timeout passed before a search could be sent"};
  for (int attempt = 1; attempt <= 2; ++attempt) {
    // A retry after a timeout would double the wait the caller was promised.
    if (std::chrono::steady_clock::now() >= deadline) break;
    const bool reused = connected();
    if (auto opened = open(deadline); !opened) {
      last = std::move(opened.error());
      backOff(last.message);
      break;
    }
    if (!reused && pool_connects_ != nullptr) pool_connects_->fetch_add(1);
    if (!reused && backoff_ != std::chrono::milliseconds::zero()) {
      spdlog::info("LDAP connection to {} is back", options_.uris[open_uri_]);
      backoff_ = std::chrono::milliseconds::zero();
    }
    auto outcome = search(filter, deadline);
    if (outcome) return *outcome;
    last = std::move(outcome.error());
    if (!isConnectionError(last.code)) break;
    // A server that hangs would hang the next search too: start the next connection at the
    // following URI.
    if (last.code == LDAP_TIMEOUT) first_uri_ = (open_uri_ + 1) % options_.uris.size();
    close();
  }
  return failedAnswer(std::move(last.message));
}

void LdapConnection::backOff(const std::string& error) {
  backoff_ = backoff_ == std::chrono::milliseconds::zero() ? kFirstBackoff
                                                           : std::min(2 * backoff_, kMaxBackoff);
  retry_at_ = std::chrono::steady_clock::now() + backoff_;
  if (pool_connects_ != nullptr) pool_connects_seen_ = pool_connects_->load();
  last_connect_error_ = error;
}

LdapConnection::Outcome<bool> LdapConnection::open(Deadline deadline) {
  if (handle_ != nullptr) return true;
  const auto count = options_.uris.size();
  Failure last{LDAP_PARAM_ERROR, "no LDAP URI"};
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0 && std::chrono::steady_clock::now() >= deadline) break;
    const auto index = (first_uri_ + i) % count;
    auto opened = openUri(index, deadline);
    if (opened) return true;
    last = std::move(opened.error());
    // A refused bind or a bad certificate setting would be the same on the next server.
    if (!isConnectionError(last.code)) break;
    if (last.code == LDAP_TIMEOUT) first_uri_ = (index + 1) % count;
  }
  return tl::unexpected(std::move(last));
}

LdapConnection::Outcome<bool> LdapConnection::openUri(std::size_t index, Deadline deadline) {
  const auto& uri = options_.uris[index];
  LDAP* handle = nullptr;
  if (const int rc = ldap_initialize(&handle, uri.c_str()); rc != LDAP_SUCCESS) {
    return tl::unexpected(failure(rc, "LDAP URI " + uri));
  }
  handle_ = handle;
  open_uri_ = index;
  auto fail = [&](int code, const std::string& what) {
    auto error = failure(code, what + " " + uri);
    close();
    return tl::unexpected(std::move(error));
  };

  const int version = LDAP_VERSION3;
  // Connect, StartTLS and bind share what is left of the lookup's time.
  const auto timeout = toTimeval(remaining(deadline));
  ldap_set_option(handle_, LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(handle_, LDAP_OPT_NETWORK_TIMEOUT, &timeout);
  ldap_set_option(handle_, LDAP_OPT_TIMEOUT, &timeout);
  ldap_set_option(handle_, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);

  const bool ldaps = startsWith(uri, "ldaps://");
  const bool starttls = options_.starttls && startsWith(uri, "ldap://");
  if (ldaps || starttls) {
    // libldap copies these into a TLS context only when LDAP_OPT_X_TLS_NEWCTX is set, so every
    // TLS option goes first and NEWCTX last; without NEWCTX the handle would use the process-wide
    // context (ldap.conf's settings) and ignore them.
    const int require = options_.tls_skip_verify ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
    const int client_context = 0;
    bool set = ldap_set_option(handle_, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) == LDAP_OPT_SUCCESS;
    if (!options_.ca_file.empty()) {
      set = set && ldap_set_option(handle_, LDAP_OPT_X_TLS_CACERTFILE, options_.ca_file.c_str()) ==
                       LDAP_OPT_SUCCESS;
    }
    if (!options_.cert_file.empty()) {
      set = set && ldap_set_option(handle_, LDAP_OPT_X_TLS_CERTFILE, options_.cert_file.c_str()) ==
                       LDAP_OPT_SUCCESS;
    }
    if (!options_.key_file.empty()) {
      set = set && ldap_set_option(handle_, LDAP_OPT_X_TLS_KEYFILE, options_.key_file.c_str()) ==
                       LDAP_OPT_SUCCESS;
    }
    set =
        set && ldap_set_option(handle_, LDAP_OPT_X_TLS_NEWCTX, &client_context) == LDAP_OPT_SUCCESS;
    if (!set) return fail(LDAP_LOCAL_ERROR, "TLS setup (ca_file, cert_file, key_file) for");
  }

  // Connect now rather than on the first search, so a dead URI is skipped here.
  if (const int rc = ldap_connect(handle_); rc != LDAP_SUCCESS) {
    // libldap reports a refused certificate on ldaps:// as "Can't contact LDAP server" too.
    return fail(rc, ldaps ? "connect (TCP, TLS handshake, certificate check) to" : "connect to");
  }
  if (starttls) {
    if (const int rc = ldap_start_tls_s(handle_, nullptr, nullptr); rc != LDAP_SUCCESS) {
      return fail(rc, "StartTLS (TLS handshake, certificate check) with");
    }
  }
  if (options_.bind_method == "external") {
    const int rc = ldap_sasl_interactive_bind_s(handle_, nullptr, "EXTERNAL", nullptr, nullptr,
                                                LDAP_SASL_QUIET, acceptSaslDefaults, nullptr);
    if (rc != LDAP_SUCCESS) return fail(rc, "SASL EXTERNAL bind to");
  } else if (!options_.bind_dn.empty()) {
    berval credentials{static_cast<ber_len_t>(options_.bind_password.size()),
                       const_cast<char*>(options_.bind_password.data())};
    const int rc = ldap_sasl_bind_s(handle_, options_.bind_dn.c_str(), LDAP_SASL_SIMPLE,
                                    &credentials, nullptr, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return fail(rc, "bind as " + options_.bind_dn + " to");
  }
  spdlog::debug("LDAP connected to {}", uri);
  return true;
}

LdapConnection::Outcome<LdapAnswer> LdapConnection::search(const std::string& filter,
                                                           Deadline deadline) {
  auto timeout = toTimeval(remaining(deadline));
  std::string attribute = options_.result_attribute;
  char* attributes[] = {attribute.data(), nullptr};
  LDAPMessage* raw_result = nullptr;
  SASLGUARD_COUNT(ldap_lookups_total);
  const int rc = ldap_search_ext_s(handle_, options_.base_dn.c_str(), scopeCode(options_.scope),
                                   filter.c_str(), attributes, 0, nullptr, nullptr, &timeout,
                                   kSizeLimit, &raw_result);
  const std::unique_ptr<LDAPMessage, int (*)(LDAPMessage*)> result(raw_result, ldap_msgfree);

  LdapAnswer answer;
  answer.status = LdapStatus::kNotFound;
  if (rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_NO_SUCH_ATTRIBUTE) return answer;
  // The size limit cut the answer short: what did arrive is still good.
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
    return tl::unexpected(failure(rc, "LDAP search on " + options_.uris[open_uri_]));
  }
  LDAPMessage* entry = result ? ldap_first_entry(handle_, result.get()) : nullptr;
  if (entry == nullptr) return answer;
  if (ldap_count_entries(handle_, result.get()) > 1 || rc == LDAP_SIZELIMIT_EXCEEDED) {
    spdlog::debug("LDAP filter {} matched more than one entry; using the first", filter);
  }
  berval** values = ldap_get_values_len(handle_, entry, attribute.c_str());
  if (values != nullptr && values[0] != nullptr) {
    answer.status = LdapStatus::kMapped;
    answer.account = toLowerAscii(std::string_view(values[0]->bv_val, values[0]->bv_len));
  }
  if (values != nullptr) ldap_value_free_len(values);
  return answer;
}

}  // namespace saslguard::enrich
