// connection.hpp — one Postfix policy connection: read bytes, answer every complete request in
// order (pipelined requests are answered in one write), keep the connection until the peer
// closes it, it idles out, or the server stops.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "protocol/parser.hpp"
#include "server/endpoint.hpp"

namespace saslguard::server {

struct Worker;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Socket socket, Worker& worker, std::atomic<std::int64_t>& open_count);
  ~Connection();

  asio::awaitable<void> run();

  // True while the connection waits for a new request with nothing half received.
  bool idle() const { return waiting_for_request_; }
  // When the connection opened or its last complete request arrived (not its last byte).
  std::chrono::steady_clock::time_point lastActivity() const { return last_activity_; }
  void close();

 private:
  // Answers the complete requests at the front of `input` until one must be awaited: lookups
  // first, or a store on the network (true: it is in request_, already consumed), or none is
  // left (false).
  bool answer(std::string_view input, std::size_t& consumed);

  Socket socket_;
  Worker& worker_;
  std::atomic<std::int64_t>& open_count_;
  protocol::RequestParser parser_;
  protocol::Request request_;
  std::string input_;  // its first input_size_ bytes are received and not yet consumed
  std::size_t input_size_ = 0;
  std::string output_;
  bool waiting_for_request_ = false;
  std::string looked_up_instance_;  // the message whose first RCPT was looked up
  bool detector_lookups_ = true;    // the pending lookups include the detectors' (first RCPT)
  bool needs_lookups_ = false;      // the pending request needs lookups() before its decision
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point parsed_at_{};  // of request_, for the latency metric
};

}  // namespace saslguard::server
