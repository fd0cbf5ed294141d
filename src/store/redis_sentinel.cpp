// redis_sentinel.cpp — see redis_sentinel.hpp. One short connection per question: lookups happen
// only when a connection to the primary is (re)made, so keeping sentinel connections open would
// buy nothing but more sockets to watch.
#include "store/redis_sentinel.hpp"

#include <algorithm>
#include <charconv>

#include "store/redis_wire.hpp"

// g++ 12 flags Asio's awaitable frame allocator (its own operator new/delete pair) as
// mismatched once a coroutine is inlined enough; a known false positive (GCC bug 109224).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace saslguard::store {
namespace asio = boost::asio;

SentinelDiscovery::SentinelDiscovery(const RedisOptions& options)
    : sentinels_(options.sentinels),
      master_name_(options.master_name),
      username_(options.sentinel_username),
      password_(options.sentinel_password),
      timeout_(options.sentinel_timeout) {}

asio::awaitable<Result<RedisEndpoint>> SentinelDiscovery::primary(asio::any_io_executor executor) {
  if (sentinels_.empty()) co_return fail("no Redis sentinel configured");
  RedisPipeline question;
  addAuth(question, username_, password_);
  question.add({"SENTINEL", "get-master-addr-by-name", master_name_});

  std::string errors;
  // A copy: another connection's lookup may reorder sentinels_ while this one waits.
  const auto order = sentinels_;
  for (const auto& sentinel : order) {
    const auto replies =
        co_await exchangeOnce(executor, sentinel, question, SteadyClock::now() + timeout_);
    std::string problem;
    if (!replies) {
      problem = replies.error().message;
    } else if (const auto& auth = replies->front(); question.size() == 2 && !auth.isStatus()) {
      problem = "sentinel " + sentinel.describe() + " refused AUTH: " + auth.describe();
    } else if (const auto& answer = replies->back();
               answer.type != RedisReply::Type::kArray || answer.elements.size() != 2) {
      problem = "sentinel " + sentinel.describe() + " does not know master '" + master_name_ +
                "': " + answer.describe();
    } else {
      const auto& port_text = answer.elements[1].text;
      unsigned port = 0;
      const auto [end, error] =
          std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (error != std::errc() || port == 0 || port > 65535) {
        problem = "sentinel " + sentinel.describe() + " gave a bad port: " + answer.describe();
      } else {
        // Ask this one first next time.
        const auto answered =
            std::find_if(sentinels_.begin(), sentinels_.end(), [&](const RedisEndpoint& e) {
              return e.host == sentinel.host && e.port == sentinel.port;
            });
        if (answered != sentinels_.end()) std::rotate(sentinels_.begin(), answered, answered + 1);
        co_return RedisEndpoint{answer.elements[0].text, static_cast<unsigned short>(port)};
      }
    }
    errors += (errors.empty() ? "" : "; ") + problem;
  }
  co_return fail("no sentinel named the primary: " + errors);
}

}  // namespace saslguard::store
