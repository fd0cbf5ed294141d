// detector.cpp — the defaults of the Detector interface.
#include "engine/detector.hpp"

namespace saslguard::engine {

boost::asio::awaitable<Verdict> Detector::lookup(const DetectorContext&, const Enrichers&) const {
  co_return Verdict{};
}

}  // namespace saslguard::engine
