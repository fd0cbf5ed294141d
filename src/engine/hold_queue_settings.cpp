// hold_queue_settings.cpp — see hold_queue_settings.hpp.
#include "engine/hold_queue_settings.hpp"

#include <chrono>
#include <memory>
#include <string_view>

#include "engine/identity.hpp"

namespace saslguard::engine {

notify::HoldQueue holdQueueFor(const config::Settings& settings) {
  notify::PostfixCommandOptions postfix;
  postfix.config_directory = settings.postfix.config_directory;
  postfix.command_directory = settings.postfix.command_directory;
  postfix.timeout = std::chrono::milliseconds(settings.postfix.command_timeout_ms);
  postfix.max_messages = static_cast<std::size_t>(settings.postfix.max_messages);
  auto resolver = std::make_shared<IdentityResolver>(settings.identity);
  notify::AccountMatcher matcher;
  matcher.use_sender = settings.identity.source == "sender";
  matcher.normalise = [resolver](std::string_view raw) { return resolver->normalise(raw); };
  return notify::HoldQueue(std::move(postfix), std::move(matcher));
}

}  // namespace saslguard::engine
