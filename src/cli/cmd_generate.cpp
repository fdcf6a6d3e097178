// cada generate: batched sampling from a model with the KV cache.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/rollout/generator.h"
#include "cada/rollout/sampling.h"
#include "cada/text/tokenizer.h"
#include "cada/util/log.h"
#include "cada/util/progress.h"
#include "cada/text/records.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_generate {

struct Opts {
  std::string model, input, out, stats;
  std::string device = "cpu";
  std::string dtype = "auto";
  std::string chat_template;
  cada::rollout::SamplingConfig sampling;  // --temperature, --top-p, ... (rollout/sampling.h)
  int64_t max_new_tokens = 128;
  bool ignore_eos = false;
  std::string engine = "auto";
  bool no_cuda_graphs = false;
  int64_t num_return_sequences = 1;
  uint64_t seed = 0;
  int64_t batch_size = 32;
  int threads = 0;
  bool raw = false;
  bool warmup = false;
};

int run(const Opts& o) {
  using namespace cada;
  model::configure_threads(o.threads);
  auto records = io::read_jsonl(o.input);
  CADA_CHECK(!records.empty(), o.input, ": no records");
  // A tokenizer is needed for text prompts and stop strings; with ids only it is optional.
  {
    auto problems = o.sampling.problems("");
    CADA_CHECK(problems.empty(), "option ", problems.empty() ? "" : problems.front());
  }
  bool needs_text = !o.sampling.stop.empty();
  for (const auto& r : records) needs_text |= !r.contains("prompt_ids");
  auto txt = text::load_text(o.model, o.chat_template, needs_text);
  auto& tok = txt.tokenizer;
  auto& tmpl = txt.chat_template;
  if (!tok) CADA_INFO("no tokenizer in ", o.model, ": ids only, EOS from config.json");
  // End-of-sequence ids come from the tokenizer (its EOS, generation_config.json's, chat end
  // tokens); without one, from config.json and generation_config.json.
  rollout::SamplingParams sp = o.sampling.params(o.max_new_tokens);
  sp.ignore_eos = o.ignore_eos;
  if (!sp.ignore_eos && !tok) {
    auto extra = text::generation_eos_ids(o.model);
    sp.stop_token_ids.insert(sp.stop_token_ids.end(), extra.begin(), extra.end());
  }

  std::vector<rollout::Request> reqs;
  int64_t budget = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string where = o.input + ":" + std::to_string(i + 1);
    rollout::Request r;
    r.prompt_ids = text::prompt_ids(records[i], tok.get(), tmpl.get(), o.raw, where);
    r.params = sp;
    r.n = records[i].value("n", o.num_return_sequences);
    r.seed = records[i].contains("seed") ? records[i]["seed"].get<uint64_t>() : o.seed * 1000003ULL + i;
    budget += r.n * r.params.max_new_tokens;
    reqs.push_back(std::move(r));
  }
  auto net = model::load_model(o.model, {o.device, o.dtype});
  rollout::GeneratorOptions gopts;
  gopts.max_batch_rows = o.batch_size;
  gopts.engine = rollout::parse_engine(o.engine);
  gopts.cuda_graphs = !o.no_cuda_graphs;
  gopts.limit_hint = "--max-new-tokens or --batch-size";
  for (const auto& r : reqs)
    gopts.reserve_positions =
        std::max<int64_t>(gopts.reserve_positions, static_cast<int64_t>(r.prompt_ids.size()) + r.params.max_new_tokens + 1);
  rollout::Generator gen(*net, tok.get(), gopts);
  if (o.warmup) {
    // Untimed: every prompt's first 8 tokens, 4 new tokens each, as benchmarks warm up their
    // peers (first-call allocations, thread pools, lazy initialisation).
    std::vector<rollout::Request> warm = reqs;
    for (auto& r : warm) {
      r.prompt_ids.resize(std::min<size_t>(r.prompt_ids.size(), 8));
      r.params.max_new_tokens = std::min<int64_t>(r.params.max_new_tokens, 4);
      r.n = 1;
    }
    // The same generator: continuous batching keeps its slots (and CUDA graphs) for the real run.
    gen.generate(warm);
  }
  const rollout::GenerationStats before = gen.stats();
  Progress bar("generate", budget, "tok");
  auto results = gen.generate(reqs, [&](int64_t n) { bar.advance(n); });
  rollout::GenerationStats st = gen.stats();
  st.prompt_tokens -= before.prompt_tokens;
  st.generated_tokens -= before.generated_tokens;
  st.prefill_s -= before.prefill_s;
  st.decode_s -= before.decode_s;
  st.steps -= before.steps;
  st.graph_replays -= before.graph_replays;
  const double secs = st.prefill_s + st.decode_s;
  char line[160];
  std::snprintf(line, sizeof line, "%lld tokens in %.2fs: %.1f tok/s (prefill %.2fs, decode %.2fs)",
                (long long)st.generated_tokens, secs, secs > 0 ? st.generated_tokens / secs : 0.0, st.prefill_s,
                st.decode_s);
  bar.finish(line);

  std::string out;
  for (size_t i = 0; i < records.size(); ++i) {
    nlohmann::json j;
    // The prompt fields travel with the generations, so `cada score` can re-score them offline.
    for (const char* key : {"id", "prompt", "messages", "label", "category", "kind", "source"})
      if (records[i].contains(key)) j[key] = records[i][key];
    j["index"] = i;
    j["prompt_ids"] = reqs[i].prompt_ids;
    j["seed"] = reqs[i].seed;
    nlohmann::json comps = nlohmann::json::array();
    for (const auto& c : results[i])
      comps.push_back({{"text", c.text}, {"ids", c.ids}, {"logprobs", c.logprobs}, {"finish_reason", c.finish_reason}});
    j["completions"] = comps;
    out += j.dump() + "\n";
  }
  io::atomic_write_file(o.out, out);
  if (!o.stats.empty()) {
    nlohmann::json s = {{"generated_tokens", st.generated_tokens}, {"prompt_tokens", st.prompt_tokens},
                        {"prefill_s", st.prefill_s},           {"decode_s", st.decode_s},
                        {"tokens_per_s", secs > 0 ? st.generated_tokens / secs : 0.0},
                        {"engine", gen.engine_name()},     {"decode_steps", st.steps},
                        {"graphs_captured", gen.stats().graphs_captured}, {"graph_replays", st.graph_replays}};
    io::atomic_write_file(o.stats, s.dump(2) + "\n");
  }
  CADA_INFO("wrote ", records.size(), " records to ", o.out);
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "generate", "Batched generation with a KV cache: samplers, stop conditions, per-token log-probs",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--model", o->model, "Hugging Face model folder")->required();
      sub.add_option("--input", o->input, "JSONL prompts: prompt | messages | prompt_ids (optional n, seed)")
          ->required();
      sub.add_option("--out", o->out, "JSONL output: one record per prompt with its completions")->required();
      cada::cli::add_struct_options(sub, o->sampling);
      sub.add_option("--max-new-tokens", o->max_new_tokens, "tokens to generate at most per sample");
      sub.add_option("--num-return-sequences", o->num_return_sequences, "samples per prompt (the GRPO group)");
      sub.add_flag("--ignore-eos", o->ignore_eos, "do not stop at EOS (benchmarks)");
      sub.add_option("--seed", o->seed, "base seed; record i uses seed * 1000003 + i unless it has 'seed'");
      sub.add_option("--batch-size", o->batch_size, "sequences decoded together");
      sub.add_option("--engine", o->engine,
                     "auto (continuous batching on CUDA, static batches on CPU), static or continuous");
      sub.add_flag("--no-cuda-graphs", o->no_cuda_graphs, "continuous batching on CUDA: launch each step's kernels eagerly");
      sub.add_option("--device", o->device, "cpu, cuda or cuda:N");
      sub.add_option("--dtype", o->dtype, "auto, float32, bfloat16 or float16");
      sub.add_option("--chat-template", o->chat_template, "override the detected chat template");
      sub.add_flag("--raw", o->raw, "treat 'prompt' strings as raw text (BOS added) instead of a user turn");
      sub.add_option("--stats", o->stats, "write timing statistics (tokens/s) to this JSON file");
      sub.add_flag("--warmup", o->warmup, "run a short untimed generation first (benchmarks)");
      sub.add_option("--threads", o->threads, "intra-op CPU threads (0 = all available cores)");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_generate
}  // namespace
