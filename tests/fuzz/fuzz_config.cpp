// Fuzz target: typed configuration (include/cada/util/config.h): JSON with comments,
// `key.sub=value` overrides, parse<Options> into a struct with every kind of field.
//
// Input: config text, then optionally a line "%%" followed by one override per line:
//
//   {"steps": 5, /* comment */ "optim": {"lr": 0.1}}
//   %%
//   optim.schedule=linear
//   stop=["a","b"]
//
// config::parse_text, apply_overrides and parse<FuzzOptions> may reject the input
// (cada::Error, or a std::exception); what parse accepts must also satisfy: no range problems,
// to_json -> parse gives the same values, and describe() works.
//
// Seeds: tests/fuzz/corpus/config. Run: scripts/fuzz.sh, or
// build-fuzz/fuzz_config tests/fuzz/corpus/config
#include <exception>
#include <optional>

#include "cada/util/config.h"
#include "fuzz_common.h"

namespace {

namespace config = cada::config;

struct Schedule {
  std::string kind = "cosine";
  int64_t warmup = 0;
  double min_ratio = 0.1;
  template <class V> void visit(V& v) {
    v("kind", kind, "constant | linear | cosine", {"constant", "linear", "cosine"});
    v("warmup", warmup, "warm-up steps", config::Range::at_least(0));
    v("min_ratio", min_ratio, "final lr / peak lr", config::Range::closed(0, 1));
  }
};

struct Optim {
  double lr = 1e-5;
  double beta2 = 0.999;
  float eps = 1e-8f;
  Schedule schedule;
  template <class V> void visit(V& v) {
    v("lr", lr, "peak learning rate", config::Range::above(0));
    v("beta2", beta2, "Adam second-moment decay", config::Range::half_open(0, 1));
    v("eps", eps, "Adam epsilon");
    v.section("schedule", schedule, "learning-rate schedule");
  }
};

struct FuzzOptions {
  Optim optim;
  int64_t steps = 100;
  int32_t batch = 8;
  uint32_t seed = 0;
  bool resume = false;
  std::string out = "runs/x";
  std::vector<std::string> stop;
  std::vector<int64_t> ids;
  std::vector<double> weights;
  std::optional<int64_t> max_len;
  std::optional<double> temperature;
  std::optional<std::string> note;
  config::json extra = config::json::object();
  template <class V> void visit(V& v) {
    v.section("optim", optim, "optimizer");
    v("steps", steps, "optimizer steps", config::Range::above(0));
    v("batch", batch, "batch size", config::Range::closed(1, 4096));
    v("seed", seed, "random seed");
    v("resume", resume, "continue a run");
    v("out", out, "output folder");
    v("stop", stop, "stop strings");
    v("ids", ids, "token ids");
    v("weights", weights, "reward weights");
    v("max_len", max_len, "optional limit");
    v("temperature", temperature, "optional temperature");
    v("note", note, "optional note");
    v("extra", extra, "free-form JSON");
  }
};

// An integer key must hold the value the JSON gave it, or be rejected: parse<> once wrapped values
// outside the field's type ("batch": 4294967301 read as 5; "seed": -1 as 4294967295). Reproducer:
// tests/fuzz/crashes/config/integer_out_of_range.
constexpr bool kCheckIntegersExact = true;

template <class T>
void check_integer(const config::json& j, const char* key, T value) {
  if (!kCheckIntegersExact || !j.is_object() || !j.contains(key) || !j.at(key).is_number_integer()) return;
  const config::json& v = j.at(key);
  if (v.is_number_unsigned()) {
    FUZZ_CHECK(value >= 0 && static_cast<uint64_t>(value) == v.get<uint64_t>());
  } else {
    FUZZ_CHECK(static_cast<int64_t>(value) == v.get<int64_t>() && (value >= 0) == (v.get<int64_t>() >= 0));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = cada::fuzz::split_parts(std::string(reinterpret_cast<const char*>(data), size));
  std::vector<std::string> overrides;
  for (size_t p = 1; p < parts.size(); ++p) {
    size_t i = 0;
    while (i < parts[p].size()) {
      size_t nl = parts[p].find('\n', i);
      if (nl == std::string::npos) nl = parts[p].size();
      overrides.push_back(parts[p].substr(i, nl - i));
      i = nl + 1;
    }
  }
  config::json j;
  try {
    j = config::parse_text(parts[0], "fuzz.json");
  } catch (const std::exception&) {
    return 0;
  }
  try {
    config::apply_overrides(j, overrides);
  } catch (const std::exception&) {
  }
  FuzzOptions opts;
  try {
    opts = config::parse<FuzzOptions>(j, "fuzz.json");
  } catch (const std::exception&) {
    return 0;
  }
  FUZZ_CHECK(config::range_problems(opts).empty());
  check_integer(j, "steps", opts.steps);
  check_integer(j, "batch", opts.batch);
  check_integer(j, "seed", opts.seed);
  const config::json resolved = config::to_json(opts);
  FuzzOptions again;
  try {
    again = config::parse<FuzzOptions>(resolved, "resolved");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the resolved config does not parse: %s\n", e.what());
    std::abort();
  }
  FUZZ_CHECK(config::to_json(again) == resolved);
  // The resolved config as the CLI saves it (dump) must read back through parse_text too.
  // dump() refuses strings with invalid UTF-8, which an override's bare string may hold.
  std::string saved;
  try {
    saved = resolved.dump(2);
  } catch (const config::json::type_error&) {
    return 0;
  }
  FUZZ_CHECK(config::parse_text(saved, "saved") == resolved);
  FUZZ_CHECK(!config::describe(opts).empty());
  return 0;
}
