// population.cpp — builds the account population once (from --seed) and writes policy requests with
// the attributes, order and stage semantics of Postfix 3.7 smtpd (check_policy_service).
#include "load/population.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <numeric>

namespace saslguard::bench {

namespace {

uint64_t splitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

void appendNumber(std::string& out, uint64_t value, int base = 10) {
  std::array<char, 24> digits;
  auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value, base).ptr;
  out.append(digits.data(), end);
}

void appendPadded(std::string& out, uint64_t value, size_t width) {
  std::array<char, 24> digits;
  auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  auto size = static_cast<size_t>(end - digits.data());
  if (size < width) out.append(width - size, '0');
  out.append(digits.data(), size);
}

AddressText makeAddress(unsigned a, unsigned b, unsigned c, unsigned d) {
  AddressText text;
  char* p = text.bytes.data();
  char* end = p + text.bytes.size();
  for (unsigned octet : {a, b, c, d}) {
    p = std::to_chars(p, end, octet).ptr;
    *p++ = '.';
  }
  text.size = static_cast<uint8_t>(p - text.bytes.data() - 1);  // drop the last dot
  return text;
}

// A client anywhere on the Internet: a random address in one of the ~200 unicast /8s that are not
// private, loopback, link-local, carrier-grade NAT or documentation space (many "countries").
AddressText worldAddress(FastRandom& random) {
  unsigned first;
  do {
    first = static_cast<unsigned>(random.between(1, 223));
  } while (first == 10 || first == 100 || first == 127 || first == 169 || first == 172 ||
           first == 192 || first == 198 || first == 203);
  auto rest = random.next();
  return makeAddress(first, rest & 0xff, (rest >> 8) & 0xff, 1 + (rest >> 16) % 254);
}

}  // namespace

FastRandom::FastRandom(uint64_t seed) {
  for (auto& word : state_) word = splitMix64(seed);
}

uint64_t FastRandom::next() {
  const uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = std::rotl(state_[3], 45);
  return result;
}

uint64_t FastRandom::below(uint64_t bound) {  // Lemire's multiply-shift; the bias is negligible
  return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
}

bool FastRandom::chance(double probability) {
  return static_cast<double>(next() >> 11) * 0x1.0p-53 < probability;
}

Population::Population(const PopulationSettings& settings) : settings_(settings) {
  FastRandom random(settings.seed);
  size_t width = std::max<size_t>(4, std::to_string(settings.accounts - 1).size());
  accounts_.resize(settings.accounts);
  for (uint64_t i = 0; i < settings.accounts; ++i) {
    auto& account = accounts_[i];
    account.address = "user";
    appendPadded(account.address, i, width);
    account.address += "@example.org";
    account.client_name = "host-";
    appendNumber(account.client_name, i);
    account.client_name += ".dsl.example.net";
    auto office = random.next();  // an office NAT in 10/8 and a mobile carrier's shared range
    account.home_addresses[0] =
        makeAddress(10, (office >> 8) & 0xff, (office >> 16) & 0xff, 1 + (office >> 24) % 254);
    account.home_addresses[1] =
        makeAddress(198, 51, 100, 1 + static_cast<unsigned>(office >> 40) % 254);
  }
  // Exactly round(N x share) compromised accounts, chosen by a partial Fisher-Yates shuffle.
  compromised_count_ = static_cast<uint64_t>(
      static_cast<double>(settings.accounts) * settings.compromised_share + 0.5);
  std::vector<uint64_t> order(settings.accounts);
  std::iota(order.begin(), order.end(), 0);
  for (uint64_t i = 0; i < compromised_count_; ++i) {
    std::swap(order[i], order[i + random.below(settings.accounts - i)]);
    accounts_[order[i]].compromised = true;
  }
}

TransactionStream::TransactionStream(const Population& population, uint64_t seed,
                                     uint32_t stream_id)
    : population_(population),
      random_(seed ^ (0x51a5'1a5d'0000'0000ULL + stream_id * 0x9e3779b97f4a7c15ULL)),
      stream_id_(stream_id),
      launch_time_(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count())) {}

void TransactionStream::startTransaction() {
  const auto& settings = population_.settings();
  account_ = &population_.account(random_.below(population_.size()));
  authenticated_ = !random_.chance(settings.unauthenticated_share);
  const bool from_home = authenticated_ && !account_->compromised;
  if (from_home) {
    client_address_ = account_->home_addresses[random_.below(2)];
    client_name_ = account_->client_name;
  } else {
    client_address_ = worldAddress(random_);
    client_name_ = "unknown";
  }
  // HELO: a laptop name at home, the bare address literal from a spam bot or a foreign MTA.
  auto helo = from_home ? std::string_view("laptop.example.net") : std::string_view{};
  if (from_home) {
    std::copy(helo.begin(), helo.end(), helo_.begin());
    helo_size_ = static_cast<uint8_t>(helo.size());
  } else {
    helo_[0] = '[';
    std::copy(client_address_.view().begin(), client_address_.view().end(), helo_.begin() + 1);
    helo_[client_address_.size + 1] = ']';
    helo_size_ = static_cast<uint8_t>(client_address_.size + 2);
  }
  client_port_ = static_cast<unsigned>(random_.between(1024, 65535));

  static constexpr char kHex[] = "0123456789ABCDEF";
  auto bits = random_.next();
  for (auto& c : queue_id_) {
    c = kHex[bits & 0xf];
    bits >>= 4;
  }
  queue_id_[0] = kHex[1 + random_.below(15)];  // no leading zero, like Postfix's microsecond time

  // instance: "%x.%lx.%lx.%x" of (pid, time, counter, seqno) in smtpd; unique per transaction.
  char* p = instance_.data();
  char* end = p + instance_.size();
  p = std::to_chars(p, end, 0x1000 + stream_id_, 16).ptr;
  *p++ = '.';
  p = std::to_chars(p, end, launch_time_, 16).ptr;
  *p++ = '.';
  p = std::to_chars(p, end, ++transactions_, 16).ptr;
  *p++ = '.';
  *p++ = '0';
  instance_size_ = static_cast<uint8_t>(p - instance_.data());

  unsigned max_recipients = account_->compromised && authenticated_
                                ? settings.max_recipients_compromised
                                : settings.max_recipients;
  recipients_ = static_cast<unsigned>(random_.between(1, max_recipients));
  sent_ = 0;
  message_size_ = static_cast<uint32_t>(random_.between(800, 120000));
  sasl_login_ = random_.chance(0.2);
  sender_id_ = random_.below(1000000);
}

void TransactionStream::appendNextRequest(std::string& out) {
  if (account_ == nullptr || sent_ > recipients_) startTransaction();
  const bool end_of_message = sent_ == recipients_;
  if (!end_of_message) last_recipient_id_ = random_.below(1000000);
  appendRequest(out, end_of_message);
  ++sent_;
}

void TransactionStream::appendRequest(std::string& out, bool end_of_message) {
  auto put = [&out](std::string_view name_equals, std::string_view value) {
    out.append(name_equals);
    out.append(value);
    out.push_back('\n');
  };
  auto putNumber = [&out](std::string_view name_equals, uint64_t value) {
    out.append(name_equals);
    appendNumber(out, value);
    out.push_back('\n');
  };
  // One recipient is reported at END-OF-MESSAGE only when the message has exactly one.
  auto putRecipient = [&] {
    out.append("recipient=");
    if (!end_of_message || recipients_ == 1) {
      if (authenticated_) {
        out.append("rcpt");
        appendNumber(out, last_recipient_id_);
        out.append("@example.com");
      } else {
        out.append(account_->address);
      }
    }
    out.push_back('\n');
  };

  put("request=", "smtpd_access_policy");
  put("protocol_state=", end_of_message ? "END-OF-MESSAGE" : "RCPT");
  put("protocol_name=", "ESMTP");
  put("client_address=", client_address_.view());
  put("client_name=", client_name_);
  putNumber("client_port=", client_port_);
  put("reverse_client_name=", client_name_);
  put("server_address=", "192.0.2.25");
  put("server_port=", authenticated_ ? "587" : "25");
  put("helo_name=", {helo_.data(), helo_size_});
  if (authenticated_) {
    put("sender=", account_->address);
  } else {
    out.append("sender=bulk");
    appendNumber(out, sender_id_);
    out.append("@example.net\n");
  }
  putRecipient();
  putNumber("recipient_count=", end_of_message ? recipients_ : 0);
  put("queue_id=", sent_ == 0 ? std::string_view{} : std::string_view(queue_id_.data(), 11));
  put("instance=", {instance_.data(), instance_size_});
  putNumber("size=", message_size_);
  put("etrn_domain=", "");
  put("stress=", "");
  put("sasl_method=", authenticated_ ? (sasl_login_ ? "LOGIN" : "PLAIN") : "");
  put("sasl_username=", authenticated_ ? std::string_view(account_->address) : "");
  put("sasl_sender=", "");
  put("ccert_subject=", "");
  put("ccert_issuer=", "");
  put("ccert_fingerprint=", "");
  put("ccert_pubkey_fingerprint=", "");
  put("encryption_protocol=", "TLSv1.3");
  put("encryption_cipher=", "TLS_AES_256_GCM_SHA384");
  put("encryption_keysize=", "256");
  put("policy_context=", end_of_message ? "end_of_data" : "recipient");
  out.push_back('\n');
}

}  // namespace saslguard::bench
