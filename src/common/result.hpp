// result.hpp — expected failures are values: Result<T> carries either a T or an Error with a
// message that is fit for a log line. Bugs that "cannot happen" go through fatal() instead.
#pragma once

#include <string>
#include <tl/expected.hpp>

namespace saslguard {

struct Error {
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message) {
  return tl::unexpected<Error>(Error{std::move(message)});
}

// Logs the broken invariant and aborts (crash-only: the supervisor restarts us, state is durable).
[[noreturn]] void fatal(const std::string& what);

}  // namespace saslguard
