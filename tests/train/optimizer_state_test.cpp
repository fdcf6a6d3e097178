// AdamW state through optimizer.safetensors + optimizer.json: a reload continues bitwise, and
// damaged or mismatched files are one sentence naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include "cada/io/files.h"
#include "cada/train/checkpoint.h"
#include "cada/train/optim.h"

#include <chrono>
#include <thread>

namespace {

using Named = std::vector<std::pair<std::string, at::Tensor>>;

struct Net {
  torch::nn::Linear a{4, 3}, b{3, 2};
  Named named() { return {{"a.weight", a->weight}, {"a.bias", a->bias}, {"b.weight", b->weight}, {"b.bias", b->bias}}; }
  std::vector<at::Tensor> params() {
    std::vector<at::Tensor> p;
    for (auto& [n, t] : named()) p.push_back(t);
    return p;
  }
  void step(torch::optim::Optimizer& opt, int i) {
    opt.zero_grad();
    auto x = at::arange(8, at::kFloat).reshape({2, 4}) * (0.1 * (i + 1));
    b(torch::tanh(a(x))).pow(2).sum().backward();
    opt.step();
  }
  void copy_from(Net& o) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < named().size(); ++i) named()[i].second.copy_(o.named()[i].second);
  }
};

std::string tmpdir(const char* tag) {
  std::string d = "/tmp/cada_optim_" + std::string(tag) + "_" + std::to_string(getpid());
  cada::io::remove_tree(d);
  cada::io::make_dirs(d);
  return d;
}

}  // namespace

TEST(OptimizerState, ReloadContinuesBitwise) {
  torch::manual_seed(3);
  Net n1;
  cada::train::OptimOptions oo;
  oo.lr = 1e-2;
  oo.weight_decay = 0.1;
  auto o1 = cada::train::make_adamw(n1.params(), oo);
  for (int i = 0; i < 3; ++i) n1.step(*o1, i);
  const std::string dir = tmpdir("reload");
  cada::train::save_optimizer_state(dir, *o1, n1.named());
  EXPECT_TRUE(cada::io::file_exists(dir + "/optimizer.safetensors"));

  Net n2;
  n2.copy_from(n1);
  cada::train::OptimOptions other = oo;
  other.lr = 5.0;  // restored from the file
  auto o2 = cada::train::make_adamw(n2.params(), other);
  cada::train::load_optimizer_state(dir, *o2, n2.named());
  for (int i = 3; i < 6; ++i) {
    n1.step(*o1, i);
    n2.step(*o2, i);
  }
  for (size_t i = 0; i < n1.named().size(); ++i)
    EXPECT_TRUE(at::equal(n1.named()[i].second, n2.named()[i].second)) << n1.named()[i].first;
  cada::io::remove_tree(dir);
}

TEST(OptimizerState, DamagedFilesAreNamed) {
  Net n;
  auto o = cada::train::make_adamw(n.params(), {});
  n.step(*o, 0);
  const std::string dir = tmpdir("damaged");
  auto message = [&]() -> std::string {
    try {
      auto o2 = cada::train::make_adamw(n.params(), {});
      cada::train::load_optimizer_state(dir, *o2, n.named());
    } catch (const cada::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message().find("optimizer.json: missing"), std::string::npos) << message();
  cada::train::save_optimizer_state(dir, *o, n.named());
  EXPECT_EQ(message(), "");
  const std::string st = cada::io::read_file(dir + "/optimizer.safetensors");
  cada::io::atomic_write_file(dir + "/optimizer.safetensors", st.substr(0, st.size() / 2));
  EXPECT_NE(message().find("optimizer.safetensors"), std::string::npos) << message();
  cada::io::atomic_write_file(dir + "/optimizer.json", "{\"format\": \"x\"");
  EXPECT_NE(message().find("optimizer.json: not a cada-adamw-1 optimizer state"), std::string::npos) << message();
  // Another model's parameters.
  cada::train::save_optimizer_state(dir, *o, n.named());
  Net m;
  auto named = m.named();
  named[0].first = "c.weight";
  auto o3 = cada::train::make_adamw(m.params(), {});
  try {
    cada::train::load_optimizer_state(dir, *o3, named);
    FAIL() << "expected an error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is 'a.weight', the model's is 'c.weight'"), std::string::npos) << e.what();
  }
  cada::io::remove_tree(dir);
}

TEST(CheckpointSchedule, StepsAndTime) {
  auto& comm = cada::dist::world();
  cada::train::CheckpointOptions o;
  o.every = 3;
  o.every_minutes = 0;
  cada::train::CheckpointSchedule by_steps(o);
  std::vector<int64_t> due;
  for (int64_t s = 1; s <= 7; ++s)
    if (by_steps.due(comm, s)) due.push_back(s);
  EXPECT_EQ(due, (std::vector<int64_t>{3, 6}));
  o.every = 0;
  o.every_minutes = 0.001;  // 60 ms
  cada::train::CheckpointSchedule by_time(o);
  EXPECT_FALSE(by_time.due(comm, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_TRUE(by_time.due(comm, 2));
  by_time.written();
  EXPECT_FALSE(by_time.due(comm, 3));
}
