// HarmBench's protocol: copyright behaviours and the contextual classifier's slots.
#include "cada/eval/harmbench.h"

#include <algorithm>

namespace cada::eval {

bool is_copyright_behavior(const PromptRecord& r) {
  return r.source == "harmbench" && record_field(r, "FunctionalCategory") == "copyright";
}

size_t drop_copyright_behaviors(std::vector<PromptRecord>& records) {
  const size_t before = records.size();
  records.erase(std::remove_if(records.begin(), records.end(), is_copyright_behavior), records.end());
  return before - records.size();
}

std::string copyright_note(const std::string& dataset, size_t n) {
  return "dataset '" + dataset + "': " + std::to_string(n) +
         " HarmBench copyright behaviour(s) excluded: HarmBench judges them by hashing the generation against the "
         "work, not with its classifier; set judges.copyright to a hashing judge to keep them";
}

void harmbench_slots(const std::string& source, const nlohmann::json& meta, std::string& behavior,
                     std::string& context) {
  behavior.clear();
  context.clear();
  if (source != "harmbench" || !meta.is_object()) return;
  auto str = [&](const char* k) {
    return meta.contains(k) && meta[k].is_string() ? meta[k].get<std::string>() : std::string();
  };
  behavior = str("Behavior");
  if (meta.value("contextual", false)) context = str("ContextString");
}

}  // namespace cada::eval
