// population.hpp — the simulated mail users and the Postfix 3.7 policy requests they cause:
// accounts with two home IPs, a compromised share sending many recipients from random IPs around
// the world, and the per-connection stream of transactions (k RCPT requests, then END-OF-MESSAGE).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace saslguard::bench {

// xoshiro256** seeded through splitmix64: fast, small state, reproducible from --seed.
class FastRandom {
 public:
  explicit FastRandom(uint64_t seed);
  uint64_t next();
  uint64_t below(uint64_t bound);  // uniform in [0, bound), bound > 0
  uint64_t between(uint64_t low, uint64_t high) { return low + below(high - low + 1); }
  bool chance(double probability);

 private:
  std::array<uint64_t, 4> state_;
};

struct AddressText {  // dotted IPv4 text, kept inline so requests are built without allocation
  std::array<char, 16> bytes{};
  uint8_t size = 0;
  std::string_view view() const { return {bytes.data(), size}; }
};

struct Account {
  std::string address;      // user0042@example.org (also the sasl_username)
  std::string client_name;  // reverse DNS of its home connection
  std::array<AddressText, 2> home_addresses;
  bool compromised = false;
};

struct PopulationSettings {
  uint64_t accounts = 10000;
  double compromised_share = 0.01;
  double unauthenticated_share = 0.0;
  unsigned max_recipients = 3;
  unsigned max_recipients_compromised = 50;
  uint64_t seed = 1;
};

class Population {
 public:
  explicit Population(const PopulationSettings& settings);
  const PopulationSettings& settings() const { return settings_; }
  const Account& account(uint64_t index) const { return accounts_[index]; }
  uint64_t size() const { return accounts_.size(); }
  uint64_t compromisedCount() const { return compromised_count_; }

 private:
  PopulationSettings settings_;
  std::vector<Account> accounts_;
  uint64_t compromised_count_ = 0;
};

// What one smtpd process would send over its policy connection: message after message, each a run
// of RCPT requests followed by END-OF-MESSAGE. Builds each request straight into the caller's
// buffer (whose capacity is reused), so the generator does not allocate per request.
class TransactionStream {
 public:
  // stream_id makes `instance` unique across the connections of one run.
  TransactionStream(const Population& population, uint64_t seed, uint32_t stream_id);
  void appendNextRequest(std::string& out);

 private:
  void startTransaction();
  void appendRequest(std::string& out, bool end_of_message);

  const Population& population_;
  FastRandom random_;
  uint32_t stream_id_;
  uint64_t launch_time_;
  uint64_t transactions_ = 0;

  // The transaction in progress.
  const Account* account_ = nullptr;
  bool authenticated_ = true;
  AddressText client_address_;
  std::string_view client_name_;
  std::array<char, 24> helo_{};
  uint8_t helo_size_ = 0;
  unsigned client_port_ = 0;
  std::array<char, 11> queue_id_{};
  std::array<char, 48> instance_{};
  uint8_t instance_size_ = 0;
  uint64_t sender_id_ = 0;
  uint64_t last_recipient_id_ = 0;
  unsigned recipients_ = 0;  // k
  unsigned sent_ = 0;        // RCPT requests already sent, 0..k; k means END-OF-MESSAGE is next
  uint32_t message_size_ = 0;
  bool sasl_login_ = false;  // LOGIN instead of PLAIN
};

}  // namespace saslguard::bench
