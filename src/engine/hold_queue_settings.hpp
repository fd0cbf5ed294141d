// hold_queue_settings.hpp — the hold queue of the Postfix that [postfix] describes, with held
// messages matched to accounts the way identities are normalised ([identity]). The CLI and the
// admin API both act on it through here.
#pragma once

#include "config/settings.hpp"
#include "notify/hold_queue.hpp"

namespace saslguard::engine {

notify::HoldQueue holdQueueFor(const config::Settings& settings);

}  // namespace saslguard::engine
