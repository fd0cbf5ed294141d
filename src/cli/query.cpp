// query.cpp — `saslguard query`: sends one policy request, built from key=value arguments or read
// from standard input, to a running daemon and prints its reply. For scripts and for checking a
// deployment by hand.
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/commands.hpp"
#include "server/endpoint.hpp"

namespace saslguard::cli {
namespace {

namespace asio = boost::asio;

struct QueryOptions {
  std::string target = "127.0.0.1:10040";
  std::vector<std::string> attributes;
  int timeout_ms = 5000;
};

std::string buildRequest(const std::vector<std::string>& attributes) {
  std::string request;
  bool hasRequest = false;
  for (const auto& attribute : attributes) {
    if (attribute.rfind("request=", 0) == 0) hasRequest = true;
  }
  if (!hasRequest) request += "request=smtpd_access_policy\n";
  for (const auto& attribute : attributes) request += attribute + "\n";
  return request + "\n";
}

int run(const QueryOptions& options) {
  std::vector<std::string> attributes = options.attributes;
  if (attributes.empty()) {
    if (::isatty(STDIN_FILENO)) {
      std::cerr << "saslguard query: give key=value attributes, or a request on standard input\n";
      return 2;
    }
    std::string line;
    while (std::getline(std::cin, line) && !line.empty()) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      attributes.push_back(line);
    }
  }
  for (const auto& attribute : attributes) {
    if (attribute.find('=') == std::string::npos || attribute.find('\n') != std::string::npos) {
      std::cerr << "saslguard query: '" << attribute << "' is not a name=value attribute\n";
      return 2;
    }
  }
  auto address = server::parseListenAddress(options.target);
  if (!address) {
    std::cerr << "saslguard query: " << address.error().message << "\n";
    return 2;
  }
  asio::io_context context;
  server::Socket socket(context);
  boost::system::error_code ec;
  socket.connect(address->endpoint, ec);
  if (ec) {
    std::cerr << "saslguard query: cannot connect to " << options.target << ": " << ec.message()
              << "\n";
    return 1;
  }
  const timeval timeout{options.timeout_ms / 1000, (options.timeout_ms % 1000) * 1000};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const auto request = buildRequest(attributes);
  asio::write(socket, asio::buffer(request), ec);
  asio::streambuf reply(65536);
  if (!ec) asio::read_until(socket, reply, "\n\n", ec);
  if (ec) {
    std::cerr << "saslguard query: no reply from " << options.target << ": " << ec.message()
              << "\n";
    return 1;
  }
  std::string text(asio::buffers_begin(reply.data()), asio::buffers_end(reply.data()));
  std::cout << text.substr(0, text.find("\n\n")) << "\n";
  return 0;
}

}  // namespace

Command addQuery(CLI::App& app) {
  auto* query = app.add_subcommand(
      "query",
      "send one policy request (name=value arguments or standard input) and print the reply");
  auto options = std::make_shared<QueryOptions>();
  query
      ->add_option("--target", options->target,
                   "the daemon's policy address: HOST:PORT or unix:/path")
      ->capture_default_str();
  query->add_option("--timeout-ms", options->timeout_ms, "how long to wait for the reply")
      ->capture_default_str();
  query->add_option("attributes", options->attributes,
                    "name=value attributes; request=smtpd_access_policy is added when missing");
  return [options] { return run(*options); };
}

}  // namespace saslguard::cli
