// The GPU configs (configs/gpu) read only public data under data/external and the shipped
// specifications: no tiny-world path, no data file that is neither shipped nor downloadable.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "cada/util/config.h"
#include "safety_test_util.h"

namespace cada::safety {
namespace {

namespace fs = std::filesystem;
using testing::repo_file;
using testing::repo_root;

void strings_of(const nlohmann::json& j, std::vector<std::string>& out) {
  if (j.is_string()) out.push_back(j.get<std::string>());
  for (const auto& v : j.is_structured() ? j : nlohmann::json::array()) strings_of(v, out);
}

TEST(GpuConfigs, ReadOnlyExternalDataAndRealSpecs) {
  int configs = 0, data_paths = 0;
  for (const auto& e : fs::recursive_directory_iterator(repo_file("configs/gpu"))) {
    if (e.path().extension() != ".json") continue;
    ++configs;
    std::vector<std::string> values;
    strings_of(config::load_file(e.path().string()), values);  // comments are not values
    for (const auto& v : values) {
      EXPECT_EQ(v.find("tiny-world"), std::string::npos) << e.path() << " reads the tiny world: " << v;
      if (v.rfind("data/", 0) != 0) continue;
      ++data_paths;
      const bool external = v.rfind("data/external/", 0) == 0;
      EXPECT_TRUE(external || fs::exists(repo_root() + "/" + v))
          << e.path() << " names '" << v << "', which is neither shipped nor under data/external/";
      EXPECT_NE(v, "data/specs/explicit.json") << e.path() << ": the placeholder spec";
      EXPECT_NE(v, "data/specs/cases.json") << e.path() << ": the placeholder spec";
    }
  }
  EXPECT_GE(configs, 6);
  EXPECT_GE(data_paths, 6);
}

}  // namespace
}  // namespace cada::safety
