// Training curves from metrics.jsonl: which panels a GRPO, SFT and RM run get, held-out series
// beside the training ones, torn lines skipped, and the files a run folder gets.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "cada/io/files.h"
#include "cada/train/curves.h"
#include "cada/train/run_folder.h"

namespace {

std::vector<std::string> titles(const std::vector<cada::chart::Panel>& ps) {
  std::vector<std::string> t;
  for (const auto& p : ps) t.push_back(p.title);
  return t;
}

}  // namespace

TEST(Curves, GrpoRunGetsRewardKlLossAndLength) {
  const std::string m =
      R"({"step":1,"train/reward":0.1,"train/kl":0.0,"train/loss":-0.04,"train/completion_length":55,"train/lr":1e-5})"
      "\n"
      R"({"step":2,"train/reward":0.3,"train/kl":0.01,"train/loss":-0.02,"train/completion_length":50,"train/lr":2e-5})"
      "\n";
  const auto ps = cada::train::curve_panels(m);
  EXPECT_EQ(titles(ps), (std::vector<std::string>{"reward", "KL to the reference", "loss", "completion length (tokens)",
                                                  "learning rate"}));
  ASSERT_EQ(ps[0].series.size(), 1u);
  EXPECT_EQ(ps[0].series[0].x, (std::vector<double>{1, 2}));
  EXPECT_EQ(ps[0].series[0].y, (std::vector<double>{0.1, 0.3}));
}

TEST(Curves, HeldOutLossSitsBesideTrainingLossAndTornLinesAreSkipped) {
  const std::string m = "{\"step\":1,\"train/loss\":2.0}\n{\"step\":2,\"train/loss\":1.5,\"eval/loss\":1.7}\n"
                        "{\"step\":3,\"train/lo";
  const auto ps = cada::train::curve_panels(m);
  ASSERT_EQ(titles(ps), (std::vector<std::string>{"loss"}));
  ASSERT_EQ(ps[0].series.size(), 2u);
  EXPECT_EQ(ps[0].series[0].name, "train");
  EXPECT_EQ(ps[0].series[1].name, "held-out");
  EXPECT_EQ(ps[0].series[1].x, (std::vector<double>{2}));
  EXPECT_EQ(ps[0].series[0].x.size(), 2u);
}

TEST(Curves, WritesPngAndSvgThatBelongToTheRun) {
  const std::string dir = ::testing::TempDir() + "/curves_run";
  cada::io::remove_tree(dir);
  cada::io::make_dirs(dir);
  cada::train::write_training_curves(dir);  // no metrics yet: nothing
  EXPECT_FALSE(cada::io::file_exists(dir + "/curves.png"));
  cada::io::atomic_write_file(dir + "/metrics.jsonl", "{\"step\":1,\"train/accuracy\":0.5,\"eval/accuracy\":0.6}\n");
  cada::train::write_training_curves(dir);
  EXPECT_EQ(cada::io::read_file(dir + "/curves.png").substr(1, 3), "PNG");
  EXPECT_NE(cada::io::read_file(dir + "/curves.svg").find("<svg"), std::string::npos);
  const auto entries = cada::train::RunFolder::run_entries(dir);
  EXPECT_NE(std::find(entries.begin(), entries.end(), "curves.png"), entries.end());
  cada::io::remove_tree(dir);
}
