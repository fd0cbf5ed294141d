// files.hpp — small file reads the configuration needs: secrets kept out of the TOML file
// (passwords, API keys) are the first line of a file of their own.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace saslguard {

// The first line of `path`, without its line break or surrounding blanks. The error names
// `option` and the path, never the content.
Result<std::string> readFirstLine(const std::string& path, std::string_view option);

// Every line of `path` that is not blank, trimmed (lists of tokens). Errors as readFirstLine.
Result<std::vector<std::string>> readLines(const std::string& path, std::string_view option);

// Replaces `path` with `content` so that a reader (or a crash) sees the old file or the new one,
// never a mix: a temporary file in the same directory, fsync, rename, fsync of the directory.
// The new file keeps the old one's permission bits (0644 for a new file).
Result<void> writeFileAtomically(const std::string& path, std::string_view content);

}  // namespace saslguard
