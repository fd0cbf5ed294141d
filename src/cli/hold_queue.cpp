// hold_queue.cpp — `saslguard accounts held|release|purge ACCOUNT`: the account's messages in the
// local Postfix's hold queue ([postfix]), listed, released or deleted here, as the invoking user
// (postsuper and postcat need root). Each release or purge leaves an audit line in the log.
#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/json.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "common/log.hpp"
#include "config/loader.hpp"
#include "engine/hold_queue_settings.hpp"
#include "engine/identity.hpp"
#include "notify/hold_queue.hpp"

namespace saslguard::cli {
namespace {

namespace json = boost::json;

struct HoldQueueOptions {
  config::LoadRequest request;
  std::string account;
  bool as_json = false;
  bool dry_run = false;
};

std::string invoker() {
  const auto* pw = ::getpwuid(::getuid());
  return "cli:" + (pw != nullptr ? std::string(pw->pw_name) : "uid" + std::to_string(::getuid()));
}

void printHeld(const std::vector<notify::QueuedMessage>& messages) {
  for (const auto& message : messages) {
    std::string recipients;
    for (const auto& recipient : message.recipients) {
      recipients += (recipients.empty() ? "" : ",") + recipient;
    }
    std::cout << fmt::format("{:<16} {}  {:>8}  {:<32} {}\n", message.queue_id,
                             notify::isoTime(message.arrival_time_s), message.size,
                             message.sender.empty() ? "<>" : message.sender, recipients);
  }
}

int run(const std::string& verb, HoldQueueOptions& options) {
  options.request.environment = config::currentEnvironment();
  auto settings = config::load(options.request);
  if (!settings) {
    std::cerr << settings.error().text() << "\n";
    return 78;
  }
  log::LogOptions log_options{settings->log.sink, settings->log.level,
                              settings->log.syslog_facility, settings->log.syslog_ident};
  if (auto logging = log::init(log_options); !logging) {
    std::cerr << "saslguard: " << logging.error().message << "\n";
    return 1;
  }
  const auto queue = engine::holdQueueFor(*settings);
  if (verb == "held") {
    auto held = queue.held(options.account);
    if (!held) {
      std::cerr << "saslguard: " << held.error().message << "\n";
      return 1;
    }
    if (options.as_json) {
      std::cout << json::serialize(notify::heldToJson(*held)) << "\n";
      return 0;
    }
    if (held->messages.empty()) std::cout << "no held message for " << held->account << "\n";
    printHeld(held->messages);
    if (held->truncated) std::cout << "(only the first postfix.max_messages were looked at)\n";
    return 0;
  }
  auto done = verb == "release" ? queue.release(options.account, options.dry_run, invoker())
                                : queue.purge(options.account, options.dry_run, invoker());
  if (!done) {
    std::cerr << "saslguard: " << done.error().message << "\n";
    return 1;
  }
  if (options.as_json) {
    std::cout << json::serialize(notify::actionToJson(*done)) << "\n";
    return 0;
  }
  const std::string past = verb == "release" ? "released" : "purged";
  if (options.dry_run) {
    std::cout << "dry run: would have " << past << " " << done->messages.size()
              << " held message(s) of " << done->account << "\n";
  } else {
    std::cout << past << " " << done->done << " held message(s) of " << done->account << "\n";
  }
  printHeld(done->messages);
  return 0;
}

}  // namespace

std::function<std::optional<int>()> addHoldQueueVerbs(CLI::App& accounts) {
  auto options = std::make_shared<HoldQueueOptions>();
  auto verb = std::make_shared<std::string>();
  const auto common = [&](CLI::App* sub) {
    sub->add_option("account", options->account, "the account")->required();
    config::addFlags(*sub, options->request);
    sub->add_flag("--json", options->as_json, "print the answer as JSON");
    sub->callback([verb, sub] { *verb = sub->get_name(); });
  };
  common(accounts.add_subcommand(
      "held", "the account's messages in Postfix's hold queue (queue id, arrival, sender, ...)"));
  auto* release = accounts.add_subcommand(
      "release", "release the account's held messages for delivery (postsuper -H, postqueue -i)");
  release->add_flag("--dry-run", options->dry_run, "list what would be released, change nothing");
  common(release);
  auto* purge = accounts.add_subcommand(
      "purge", "delete the account's held messages from the hold queue (postsuper -d)");
  purge->add_flag("--dry-run", options->dry_run, "list what would be deleted, change nothing");
  common(purge);
  return [options, verb]() -> std::optional<int> {
    if (verb->empty()) return std::nullopt;
    return run(*verb, *options);
  };
}

}  // namespace saslguard::cli
