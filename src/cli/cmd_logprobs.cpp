// cada logprobs: per-token log-probs of completions under a model.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/model/logprobs.h"
#include "cada/util/progress.h"
#include "cada/util/log.h"
#include "cada/text/records.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_logprobs {

struct Opts {
  std::string model, input, out;
  std::string device = "cpu";
  std::string dtype = "auto";
  std::string chat_template;
  std::string completion_field = "completion";
  int64_t batch_size = 8;
  int64_t max_length = 0;            // 0 = the model's max_position_embeddings
  std::string on_overlong = "fail";
  int threads = 0;
  bool raw = false;
};

int run(const Opts& o) {
  using namespace cada;
  model::configure_threads(o.threads);
  auto records = io::read_jsonl(o.input);
  CADA_CHECK(!records.empty(), o.input, ": no records");

  bool needs_text = false;
  for (const auto& r : records)
    needs_text |= !(r.contains("prompt_ids") && r.contains("completion_ids"));
  auto txt = text::load_text(o.model, o.chat_template, needs_text);
  auto& tok = txt.tokenizer;
  auto& tmpl = txt.chat_template;

  // Sequences longer than the model's positions are refused (or skipped) before any compute:
  // one long line must not run for minutes and gigabytes.
  const int64_t max_length = o.max_length > 0 ? o.max_length : model::ModelConfig::load(o.model).max_position_embeddings;
  std::vector<std::vector<int32_t>> prompts, completions;
  std::vector<size_t> skipped;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string where = o.input + ":" + std::to_string(i + 1);
    prompts.push_back(text::prompt_ids(records[i], tok.get(), tmpl.get(), o.raw, where));
    if (o.completion_field != "completion" && !records[i].contains("completion_ids")) {
      CADA_CHECK(records[i].contains(o.completion_field) && records[i][o.completion_field].is_string(), where,
                 ": expected a '", o.completion_field, "' string (--completion-field)");
      records[i]["completion"] = records[i][o.completion_field];
    }
    completions.push_back(text::completion_ids(records[i], tok.get(), where));
    const size_t n = prompts.back().size() + completions.back().size();
    if (static_cast<int64_t>(n) <= max_length) continue;
    CADA_CHECK(o.on_overlong == "skip", where, ": prompt and completion are ", n, " tokens, more than --max-length ",
               max_length, o.max_length > 0 ? "" : " (the model's max_position_embeddings)",
               "; pass --on-overlong skip to leave such records out");
    skipped.push_back(i);
    prompts.back().clear();  // scored as empty, written as skipped
    completions.back().clear();
  }
  if (!skipped.empty())
    CADA_WARN(skipped.size(), " record(s) longer than ", max_length, " tokens skipped (first: ", o.input, ":",
              skipped.front() + 1, ")");

  auto net = model::load_model(o.model, {o.device, o.dtype});
  std::string out_text;
  double total_lp = 0;
  int64_t total_tokens = 0;
  Progress bar("logprobs", static_cast<int64_t>(records.size()), "rec");
  const size_t chunk = static_cast<size_t>(o.batch_size) * 4;
  for (size_t s = 0; s < records.size(); s += chunk) {
    const size_t e = std::min(records.size(), s + chunk);
    std::vector<std::vector<int32_t>> p(prompts.begin() + s, prompts.begin() + e);
    std::vector<std::vector<int32_t>> c(completions.begin() + s, completions.begin() + e);
    for (auto& x : p)
      if (x.empty()) x.push_back(0);  // skipped records: a one-token placeholder, not written
    auto res = model::completion_logprobs(*net, p, c, o.batch_size);
    for (size_t k = 0; k < res.size(); ++k) {
      const size_t i = s + k;
      if (std::binary_search(skipped.begin(), skipped.end(), i)) {
        nlohmann::json j = {{"index", i}, {"skipped", "longer than " + std::to_string(max_length) + " tokens"}};
        if (records[i].contains("id")) j["id"] = records[i]["id"];
        out_text += j.dump() + "\n";
        continue;
      }
      double sum = 0;
      for (float v : res[k].logprobs) sum += v;
      total_lp += sum;
      total_tokens += static_cast<int64_t>(res[k].logprobs.size());
      nlohmann::json j;
      if (records[i].contains("id")) j["id"] = records[i]["id"];
      j["index"] = i;
      j["prompt_tokens"] = prompts[i].size();
      j["completion_ids"] = completions[i];
      j["logprobs"] = res[k].logprobs;
      j["sum_logprob"] = sum;
      j["num_tokens"] = res[k].logprobs.size();
      j["perplexity"] = res[k].logprobs.empty() ? nlohmann::json(nullptr)
                                                : nlohmann::json(std::exp(-sum / res[k].logprobs.size()));
      out_text += j.dump() + "\n";
    }
    bar.advance(static_cast<int64_t>(e - s));
  }
  bar.finish();
  io::atomic_write_file(o.out, out_text);
  CADA_INFO("wrote ", records.size(), " records to ", o.out);
  if (total_tokens > 0)
    std::printf("%zu records, %lld completion tokens: mean log-prob per token %.4f (perplexity %.2f)\n",
                records.size(), static_cast<long long>(total_tokens), total_lp / total_tokens,
                std::exp(-total_lp / total_tokens));
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "logprobs", "Per-token log-probs of completions under a model (perplexity, scoring, parity checks)",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--model", o->model, "Hugging Face model folder")->required();
      sub.add_option("--input", o->input,
                     "JSONL: prompt | messages | prompt_ids, and completion | completion_ids")->required();
      sub.add_option("--out", o->out, "JSONL output: completion_ids, logprobs, sum_logprob, perplexity")->required();
      sub.add_option("--device", o->device, "cpu, cuda or cuda:N");
      sub.add_option("--dtype", o->dtype, "auto, float32, bfloat16 or float16");
      sub.add_option("--batch-size", o->batch_size, "sequences per forward pass");
      sub.add_option("--max-length", o->max_length,
                     "longest prompt + completion in tokens (0 = the model's max_position_embeddings)");
      sub.add_option("--on-overlong", o->on_overlong, "longer records: fail (naming the record) or skip (written as "
                     "{index, skipped})")->check(CLI::IsMember({"fail", "skip"}));
      sub.add_option("--chat-template", o->chat_template, "override the detected chat template");
      sub.add_option("--completion-field", o->completion_field,
                     "record field holding the completion text (e.g. chosen / rejected of preference pairs)");
      sub.add_flag("--raw", o->raw, "treat 'prompt' strings as raw text (BOS added) instead of a user turn");
      sub.add_option("--threads", o->threads, "intra-op CPU threads (0 = all available cores)");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_logprobs
}  // namespace
