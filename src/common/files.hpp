// files.hpp — small file reads the configuration needs: secrets kept out of the TOML file
// (passwords, API keys) are the first line of a file of their own.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace saslguard {

// The first line of `path`, without its line break or surrounding blanks. The error names
// `option` and the path, never the content.
Result<std::string> readFirstLine(const std::string& path, std::string_view option);

}  // namespace saslguard
