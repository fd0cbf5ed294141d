// strings.hpp — small string helpers used across folders (ASCII case folding, trimming,
// splitting); none of them allocates unless it returns a std::string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace saslguard {

std::string_view trim(std::string_view s);
std::string toLowerAscii(std::string_view s);
std::string toUpperAscii(std::string_view s);
bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::vector<std::string_view> split(std::string_view s, char separator);
// Quotes a value for a key=value log line when it contains spaces, quotes or control bytes.
std::string quoteForLog(std::string_view s);
// RFC 8259 string escaping, without the surrounding quotes.
std::string jsonEscape(std::string_view s);

}  // namespace saslguard
