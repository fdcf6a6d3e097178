// Every trainer config: its defaults lie inside the declared ranges, and each shipped config
// file under configs/ parses (the ranges and duplicate-key check included).
#include <gtest/gtest.h>

#include "cada/io/files.h"
#include "cada/train/grpo_trainer.h"
#include "cada/train/lm_trainer.h"
#include "cada/train/reward_trainer.h"
#include "cada/util/config.h"

namespace {

template <class T>
void expect_shipped_configs_parse(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    std::string root = CADA_TEST_DATA;  // <source>/tests/data
    root = root.substr(0, root.rfind("/tests/"));
    const std::string path = root + "/configs/" + f;
    ASSERT_TRUE(cada::io::file_exists(path)) << path;
    EXPECT_NO_THROW(cada::config::parse<T>(cada::config::load_file(path), path)) << path;
  }
}

}  // namespace

TEST(ConfigDefaults, InsideTheirRanges) {
  EXPECT_TRUE(cada::config::range_problems(cada::train::GrpoConfig{}).empty());
  EXPECT_TRUE(cada::config::range_problems(cada::train::LmPretrainConfig{}).empty());
  EXPECT_TRUE(cada::config::range_problems(cada::train::SftConfig{}).empty());
  EXPECT_TRUE(cada::config::range_problems(cada::train::RewardTrainConfig{}).empty());
}

TEST(ConfigDefaults, ShippedConfigsParse) {
  expect_shipped_configs_parse<cada::train::GrpoConfig>({"tiny/grpo.json", "tiny/grpo_cada.json", "gpu/grpo_qwen2.5_1.5b.json", "gpu/grpo_llama3_8b_lora.json"});
  expect_shipped_configs_parse<cada::train::LmPretrainConfig>({"tiny/pretrain.json"});
  expect_shipped_configs_parse<cada::train::SftConfig>({"tiny/sft.json"});
  expect_shipped_configs_parse<cada::train::RewardTrainConfig>({"tiny/rm.json"});
}
