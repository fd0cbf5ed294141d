// notifier.cpp — Notifier::create(): validates both option sets and starts the hook runner and
// the mailer that are switched on. submit() hands each notice to both; stop() gives them one
// shared deadline, so the whole shutdown takes at most `grace` (plus reaping killed children).
#include <spdlog/spdlog.h>

#include "notify/hook_runner.hpp"
#include "notify/mailer.hpp"
#include "notify/notifier.hpp"

namespace saslguard::notify {
namespace {

class ThreadedNotifier final : public Notifier {
 public:
  ThreadedNotifier(HookRunner::Ptr hooks, Mailer::Ptr mailer)
      : hooks_(std::move(hooks)), mailer_(std::move(mailer)) {}
  ~ThreadedNotifier() override { stop(std::chrono::milliseconds(0)); }

  void submit(const Notice& notice) override {
    if (hooks_) hooks_->submit(notice);
    if (mailer_) mailer_->submit(notice);
  }

  void stop(std::chrono::milliseconds grace) override {
    const auto deadline = SteadyClock::now() + grace;
    if (hooks_) hooks_->requestStop(deadline);
    if (mailer_) mailer_->requestStop(deadline);
    if (hooks_) hooks_->join();
    if (mailer_) mailer_->join();
  }

  std::size_t hooksQueued() override { return hooks_ ? hooks_->queued() : 0; }
  std::size_t mailsQueued() override { return mailer_ ? mailer_->queued() : 0; }

 private:
  HookRunner::Ptr hooks_;
  Mailer::Ptr mailer_;
};

}  // namespace

Result<std::unique_ptr<Notifier>> Notifier::create(HookOptions hook, MailOptions mail) {
  HookRunner::Ptr hooks;
  if (!hook.command.empty()) {
    auto created = HookRunner::create(std::move(hook));
    if (!created) return tl::unexpected(created.error());
    hooks = std::move(*created);
  }
  Mailer::Ptr mailer;
  if (!mail.url.empty()) {
    auto created = Mailer::create(std::move(mail));
    if (!created) return tl::unexpected(created.error());
    mailer = std::move(*created);
  }
  return std::make_unique<ThreadedNotifier>(std::move(hooks), std::move(mailer));
}

}  // namespace saslguard::notify
