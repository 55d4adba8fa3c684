#include "common/json_document.h"

namespace m3 {
namespace {

constexpr int kMaxDepth = 256;

void dismantle(nlohmann::json& j, int depth) noexcept {
  if (depth >= kMaxDepth) return;
  if (j.is_array()) {
    auto& items = j.get_ref<nlohmann::json::array_t&>();
    for (auto& item : items) dismantle(item, depth + 1);
    items.clear();
  } else if (j.is_object()) {
    auto& members = j.get_ref<nlohmann::json::object_t&>();
    for (auto& member : members) dismantle(member.second, depth + 1);
    members.clear();
  }
}

}  // namespace

void dismantle_json(nlohmann::json& j) noexcept { dismantle(j, 0); }

}  // namespace m3
