// detectors.hpp — builds the configured detectors, in the order they run.
#pragma once

#include <vector>

#include "engine/detector.hpp"

namespace saslguard::engine {

Result<std::vector<ConfiguredDetector>> buildDetectors(const config::Settings& settings);

}  // namespace saslguard::engine
