// A parsed JSON document that frees itself without allocating.
//
// nlohmann::json's destructor moves the children of a non-empty array or object into a
// heap-allocated std::vector before freeing them (so deep documents do not overflow the
// stack). If that allocation fails, it throws out of a noexcept destructor and the process
// terminates. dismantle_json empties a document bottom-up instead: each container is empty
// when destroyed, which allocates nothing.
#pragma once

#include <nlohmann/json.hpp>

namespace m3 {

// Empties j's containers from the leaves up, to a nesting depth of 256 (deeper parts are left
// to the library's own destructor). Allocates nothing.
void dismantle_json(nlohmann::json& j) noexcept;

struct JsonDocument {
  nlohmann::json root;
  JsonDocument() = default;
  JsonDocument(const JsonDocument&) = delete;
  JsonDocument& operator=(const JsonDocument&) = delete;
  ~JsonDocument() { dismantle_json(root); }
};

}  // namespace m3
