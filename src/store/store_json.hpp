// store_json.hpp — the JSON forms of a compromise mark and of an account's state, shared by the
// control socket, the CLI's direct mode and the admin API, so every surface shows the same fields.
#pragma once

#include <boost/json/object.hpp>

#include "store/store.hpp"

namespace saslguard::store {

boost::json::object markToJson(const Mark& mark);
boost::json::object accountViewToJson(const AccountView& view);

}  // namespace saslguard::store
