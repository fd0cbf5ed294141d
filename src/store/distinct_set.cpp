// distinct_set.cpp — see distinct_set.hpp. Expiry happens on touch (and when the flusher sweeps
// or the store loads), so an idle set costs nothing until someone looks at it.
#include "store/distinct_set.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace saslguard::store {
namespace {

std::uint32_t toSeconds(std::int64_t now_s) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(now_s, 0, UINT32_MAX));
}

}  // namespace

SetValue::SetValue(std::string_view text) {
  if (text.size() <= kMaxInline) {
    std::memcpy(bytes_.data(), text.data(), text.size());
    kind_ = static_cast<std::uint8_t>(text.size());
    return;
  }
  if (text.size() < TextBuffer().size()) {  // perhaps an IPv6 address
    TextBuffer terminated{};
    std::memcpy(terminated.data(), text.data(), text.size());
    std::array<unsigned char, 16> binary{};
    TextBuffer canonical{};
    // Only the canonical form: binary storage must give back exactly the text it was given.
    if (::inet_pton(AF_INET6, terminated.data(), binary.data()) == 1 &&
        ::inet_ntop(AF_INET6, binary.data(), canonical.data(), canonical.size()) != nullptr &&
        text == std::string_view(canonical.data())) {
      std::memcpy(bytes_.data(), binary.data(), binary.size());
      kind_ = kIpv6;
      return;
    }
  }
  char* data = new char[text.size()];
  std::memcpy(data, text.data(), text.size());
  const auto size = static_cast<std::uint32_t>(text.size());
  std::memcpy(bytes_.data(), &data, sizeof data);
  std::memcpy(bytes_.data() + sizeof data, &size, sizeof size);
  kind_ = kHeap;
}

SetValue::SetValue(const SetValue& other) {
  copyFrom(other);
}

SetValue::SetValue(SetValue&& other) noexcept : bytes_(other.bytes_), kind_(other.kind_) {
  other.kind_ = 0;
}

SetValue& SetValue::operator=(const SetValue& other) {
  if (this != &other) {
    release();
    copyFrom(other);
  }
  return *this;
}

SetValue& SetValue::operator=(SetValue&& other) noexcept {
  if (this != &other) {
    release();
    bytes_ = other.bytes_;
    kind_ = std::exchange(other.kind_, std::uint8_t{0});
  }
  return *this;
}

SetValue::~SetValue() {
  release();
}

const char* SetValue::heapData() const {
  const char* data = nullptr;
  std::memcpy(&data, bytes_.data(), sizeof data);
  return data;
}

std::uint32_t SetValue::heapSize() const {
  std::uint32_t size = 0;
  std::memcpy(&size, bytes_.data() + sizeof(char*), sizeof size);
  return size;
}

void SetValue::release() {
  if (kind_ == kHeap) delete[] heapData();
  kind_ = 0;
}

void SetValue::copyFrom(const SetValue& other) {
  if (other.kind_ == kHeap) {
    *this = SetValue(std::string_view(other.heapData(), other.heapSize()));
  } else {
    bytes_ = other.bytes_;
    kind_ = other.kind_;
  }
}

std::string_view SetValue::view(TextBuffer& buffer) const {
  if (kind_ <= kMaxInline) return {bytes_.data(), kind_};
  if (kind_ == kHeap) return {heapData(), heapSize()};
  if (::inet_ntop(AF_INET6, bytes_.data(), buffer.data(), buffer.size()) == nullptr) return {};
  return {buffer.data()};
}

std::string SetValue::text() const {
  TextBuffer buffer;
  return std::string(view(buffer));
}

bool SetValue::equals(std::string_view text) const {
  if (kind_ <= kMaxInline) {
    return text.size() == kind_ && std::memcmp(bytes_.data(), text.data(), kind_) == 0;
  }
  if (kind_ == kHeap) {
    return text.size() == heapSize() && std::memcmp(heapData(), text.data(), text.size()) == 0;
  }
  if (text.size() <= kMaxInline) return false;  // such a text would be stored inline
  TextBuffer buffer;
  return view(buffer) == text;
}

bool DistinctSet::isLive(const Member& member, std::int64_t now_s) const {
  return now_s - std::int64_t{member.last_seen_s} < std::int64_t{ttl_s_};
}

SetResult DistinctSet::touch(std::string_view value, std::uint32_t ttl_s, std::int64_t now_s,
                             std::size_t max_entries) {
  ttl_s_ = ttl_s;
  prune(now_s);
  if (value.empty()) return SetResult{static_cast<std::uint32_t>(members_.size()), false};

  for (auto& member : members_) {
    if (member.value.equals(value)) {
      member.last_seen_s = std::max(member.last_seen_s, toSeconds(now_s));
      return SetResult{static_cast<std::uint32_t>(members_.size()), false};
    }
  }
  if (max_entries > 0 && members_.size() >= max_entries) {
    // Ties go to the smallest text, as Redis's ZPOPMIN breaks them: both stores keep the same
    // members. Rare (a full set), so comparing texts costs nothing that matters.
    auto oldest = std::min_element(members_.begin(), members_.end(), [](auto& a, auto& b) {
      if (a.last_seen_s != b.last_seen_s) return a.last_seen_s < b.last_seen_s;
      SetValue::TextBuffer a_text, b_text;
      return a.value.view(a_text) < b.value.view(b_text);
    });
    oldest->value = SetValue(value);
    oldest->last_seen_s = toSeconds(now_s);
  } else {
    members_.push_back(Member{SetValue(value), toSeconds(now_s)});
  }
  return SetResult{static_cast<std::uint32_t>(members_.size()), true};
}

std::uint32_t DistinctSet::count(std::int64_t now_s) const {
  std::uint32_t live = 0;
  for (const auto& member : members_) live += isLive(member, now_s) ? 1 : 0;
  return live;
}

void DistinctSet::prune(std::int64_t now_s) {
  members_.erase(std::remove_if(members_.begin(), members_.end(),
                                [&](const Member& member) { return !isLive(member, now_s); }),
                 members_.end());
}

DistinctSet DistinctSet::restore(std::uint32_t ttl_s, Members members) {
  DistinctSet set;
  set.ttl_s_ = ttl_s;
  set.members_ = std::move(members);
  return set;
}

}  // namespace saslguard::store
