#include "common/json_parse.h"

#include "common/error.h"

namespace m3 {

nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth) {
  using json = nlohmann::json;
  const auto limit_depth = [&](int depth, json::parse_event_t, json&) {
    if (depth > max_depth)
      fail(M3_ERR_FORMAT, source + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), limit_depth);
  } catch (const json::exception& e) {
    fail(M3_ERR_FORMAT, source + ": malformed JSON: " + e.what());
  }
}

}  // namespace m3
