// Parsing JSON text from a file, with nesting bounded while it is parsed. The parser itself
// does not recurse, but json::dump (used to quote values in error messages) does, so a deeply
// nested value could overflow the stack when a message names it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace m3 {

// The document in `text`. Throws m3::Error M3_ERR_FORMAT, starting with `source`, for malformed
// JSON or nesting deeper than `max_depth` (configuration files are shallow).
nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth = 64);

}  // namespace m3
