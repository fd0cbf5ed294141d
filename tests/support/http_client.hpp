// http_client.hpp — a blocking HTTP(S) client for the admin API's black-box tests (libcurl): the
// status, headers and body of one request, with Basic or bearer credentials.
#pragma once

#include <map>
#include <string>

namespace saslguard::testing {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::string content_type;  // empty: no Content-Type header
  std::string user;          // non-empty: HTTP Basic with password
  std::string password;
  std::string bearer;      // non-empty: Authorization: Bearer ...
  bool verify_tls = true;  // false: accept a self-signed certificate (curl -k)
  std::string ca_file;     // trust this CA instead of the system's
  long timeout_ms = 10000;
};

struct HttpResponse {
  long status = 0;  // 0: no answer (error says why)
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string error;
};

HttpResponse httpRequest(const HttpRequest& request);

// Shorthands for the common cases against http://127.0.0.1:PORT.
HttpResponse httpGet(unsigned short port, const std::string& path);
HttpResponse httpJson(unsigned short port, const std::string& method, const std::string& path,
                      const std::string& body);

}  // namespace saslguard::testing
