// Supervised LM trainers (pretrain, SFT) on a tiny model: packing and completion-only masks,
// the loss falls on a tiny corpus, the dry-run loss is the mean over the step's target tokens
// whatever the micro batching, and N steps straight equal N/2 + resume + N/2 bitwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <random>

#include "cada/io/files.h"
#include "cada/kernels/cpu_features.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"
#include "cada/train/lm_trainer.h"
#include "cada/util/error.h"

using namespace cada;

namespace {

std::string workdir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/cada_lm_" + name + "_" + std::to_string(getpid());
  io::remove_tree(d);
  io::make_dirs(d);
  return d;
}

// Sentences of a tiny language with a learnable structure: "the <animal> eats <food> ." etc.
std::vector<std::string> tiny_corpus(int n, uint32_t seed) {
  const std::vector<std::string> animals = {"cat", "dog", "cow", "owl", "fox", "hen"};
  const std::vector<std::string> foods = {"corn", "fish", "mice", "seeds", "grass", "bugs"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const size_t a = rng() % animals.size();
    out.push_back("the " + animals[a] + " eats " + foods[a] + " and the " + animals[(a + 1) % 6] + " eats " +
                  foods[(a + 1) % 6] + " .");
  }
  return out;
}

// A tiny model folder (sentencepiece tokenizer with the cada chat template).
std::string make_model(const std::string& dir) {
  auto corpus = tiny_corpus(300, 1);
  corpus.push_back("abcdefghijklmnopqrstuvwxyz 0123456789 ?!.,");
  const std::string m = dir + "/model";
  text::train_sentencepiece(corpus, 400, m, {"<|system|>", "<|user|>", "<|assistant|>", "<|end|>"});
  auto tok = text::load_tokenizer(m);
  nlohmann::json cfg = {{"model_type", "llama"},  {"hidden_size", 32},        {"intermediate_size", 64},
                        {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                        {"vocab_size", tok->vocab_size()}, {"eos_token_id", *tok->eos_id},
                        {"bos_token_id", *tok->bos_id}, {"tie_word_embeddings", true}};
  model::Transformer net(model::ModelConfig::from_json(cfg, "test"));
  model::init_weights(net, 3, 0.05);
  model::save_model(net, m, at::kFloat);
  return m;
}

void write_lines(const std::string& path, const std::vector<nlohmann::json>& recs) {
  std::string s;
  for (const auto& r : recs) s += r.dump() + "\n";
  io::atomic_write_file(path, s);
}

train::LmPretrainConfig pretrain_config(const std::string& dir, const std::string& model) {
  std::vector<nlohmann::json> docs;
  for (const auto& t : tiny_corpus(200, 2)) docs.push_back({{"text", t}});
  write_lines(dir + "/corpus.jsonl", docs);
  train::LmPretrainConfig c;
  c.model = model;
  c.corpus = dir + "/corpus.jsonl";
  c.output_dir = dir + "/run";
  c.seq_len = 32;
  c.eval_fraction = 0.05;
  c.loop.batch_size = 8;
  c.loop.micro_batch_size = 4;
  c.loop.eval_every = 10;
  c.loop.seed = 5;
  c.loop.tensorboard = false;
  c.optim.lr = 1e-2;
  c.optim.warmup_steps = 2;
  return c;
}

std::map<std::string, at::Tensor> params_of(const std::string& dir) {
  auto m = model::load_model(dir);
  std::map<std::string, at::Tensor> out;
  for (auto& [k, v] : m->hf_named_parameters()) out[k] = v.detach().clone();
  return out;
}

void expect_same_weights(const std::string& a, const std::string& b) {
  auto pa = params_of(a), pb = params_of(b);
  ASSERT_EQ(pa.size(), pb.size());
  for (auto& [k, v] : pa) EXPECT_TRUE(at::equal(v, pb[k])) << k;
}

}  // namespace

TEST(LmTrainer, PackDocumentsCutsTheStreamIntoRows) {
  std::vector<std::vector<int32_t>> docs = {{1, 10, 11, 2}, {1, 20, 2}, {1, 30, 31, 32, 33, 2}, {1, 40}};
  auto rows = train::pack_documents(docs, 5);
  // 15 tokens -> 3 rows of 5, nothing left over.
  ASSERT_EQ(rows.size(), 3u);
  std::vector<int32_t> flat;
  for (const auto& r : rows) {
    ASSERT_EQ(r.ids.size(), 5u);
    ASSERT_EQ(r.mask.size(), 5u);
    EXPECT_EQ(r.mask[0], 0);
    for (size_t t = 1; t < 5; ++t) EXPECT_EQ(r.mask[t], 1);
    EXPECT_EQ(r.targets(), 4);
    flat.insert(flat.end(), r.ids.begin(), r.ids.end());
  }
  EXPECT_EQ(flat, (std::vector<int32_t>{1, 10, 11, 2, 1, 20, 2, 1, 30, 31, 32, 33, 2, 1, 40}));
  // A remainder shorter than a row is dropped.
  EXPECT_EQ(train::pack_documents(docs, 4).size(), 3u);
  EXPECT_EQ(train::pack_documents({{1, 2, 3}}, 4).size(), 0u);
}

TEST(LmTrainer, PackExamplesKeepsEachExamplesMask) {
  std::vector<train::LmExample> ex = {
      {{1, 2, 3, 4}, {0, 0, 1, 1}},        // 4 tokens
      {{5, 6, 7, 8, 9}, {0, 1, 1, 1, 1}},  // 5: does not fit after the first in a row of 8
      {{10, 11, 12}, {1, 1, 1}},           // 3: fits after the first (first fit)
      {{13, 14}, {0, 1}},                  // 2: fits after the second
  };
  auto rows = train::pack_examples(ex, 8);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].ids, (std::vector<int32_t>{1, 2, 3, 4, 10, 11, 12}));
  // The third example's first token (11's predecessor 10) is never a target across the boundary.
  EXPECT_EQ(rows[0].mask, (std::vector<uint8_t>{0, 0, 1, 1, 0, 1, 1}));
  EXPECT_EQ(rows[1].ids, (std::vector<int32_t>{5, 6, 7, 8, 9, 13, 14}));
  EXPECT_EQ(rows[1].mask, (std::vector<uint8_t>{0, 1, 1, 1, 1, 0, 1}));
  int64_t targets = 0, packed = 0;
  for (const auto& e : ex) targets += e.targets();
  for (const auto& r : rows) packed += r.targets();
  EXPECT_EQ(packed, targets);  // example 3's first-token flag never counted (nothing before it in the example)
  EXPECT_THROW(train::pack_examples({{{1, 2, 3}, {0, 1, 1}}}, 2), cada::Error);
}

TEST(LmTrainer, CompletionOnlyMaskExcludesThePromptAndIncludesEos) {
  auto dir = workdir("mask");
  auto m = make_model(dir);
  auto tok = text::load_tokenizer(m);
  auto tmpl = text::load_chat_template(m);
  // The folder's own template (cada's, written by the test model) is rendered by the Jinja engine.
  ASSERT_EQ(tmpl->name(), "jinja");
  const int32_t eos = *tok->eos_id;
  ASSERT_EQ(tok->id_to_token(eos), "<|end|>");
  train::SftEncodeOptions o;

  // prompt-completion: targets = everything after "<|user|>\n...<|end|>\n<|assistant|>\n".
  auto e = train::encode_sft_record({{"prompt", "the cat eats"}, {"completion", "corn ."}}, *tok, tmpl.get(), o, "t:1");
  const std::string full = "<|user|>\nthe cat eats<|end|>\n<|assistant|>\ncorn .<|end|>\n";
  const auto prompt_ids = tok->encode("<|user|>\nthe cat eats<|end|>\n<|assistant|>\n", false);
  ASSERT_EQ(e.ids, tok->encode(full, false));
  ASSERT_EQ(e.mask.size(), e.ids.size());
  for (size_t t = 0; t < prompt_ids.size(); ++t) EXPECT_EQ(e.mask[t], 0) << t;
  for (size_t t = prompt_ids.size(); t < e.ids.size(); ++t) EXPECT_EQ(e.mask[t], 1) << t;
  // The end-of-turn token (EOS) is a target, so the model learns to stop.
  bool eos_target = false;
  for (size_t t = 0; t < e.ids.size(); ++t) eos_target |= e.ids[t] == eos && e.mask[t];
  EXPECT_TRUE(eos_target);
  EXPECT_EQ(tok->decode(std::vector<int32_t>(e.ids.begin() + prompt_ids.size(), e.ids.end())), "corn .<|end|>\n");
  // "response" and "messages" as the prompt are the same record.
  auto e2 = train::encode_sft_record(
      {{"messages", {{{"role", "user"}, {"content", "the cat eats"}}}}, {"response", "corn ."}}, *tok, tmpl.get(), o,
      "t:2");
  EXPECT_EQ(e2.ids, e.ids);
  EXPECT_EQ(e2.mask, e.mask);
  // completion_only_loss = false: every token but the first.
  train::SftEncodeOptions all = o;
  all.completion_only_loss = false;
  auto e3 = train::encode_sft_record({{"prompt", "the cat eats"}, {"completion", "corn ."}}, *tok, tmpl.get(), all, "t:3");
  EXPECT_EQ(e3.targets(), static_cast<int64_t>(e3.ids.size()) - 1);

  // messages: only the assistant turns (content + "<|end|>\n") are targets.
  nlohmann::json conv = {{"messages",
                          {{{"role", "system"}, {"content", "be brief"}},
                           {{"role", "user"}, {"content", "the dog eats"}},
                           {{"role", "assistant"}, {"content", "fish ."}},
                           {{"role", "user"}, {"content", "the owl eats"}},
                           {{"role", "assistant"}, {"content", "mice ."}}}}};
  auto c = train::encode_sft_record(conv, *tok, tmpl.get(), o, "t:4");
  std::string targets;
  std::vector<int32_t> run;
  for (size_t t = 0; t <= c.ids.size(); ++t) {
    if (t < c.ids.size() && c.mask[t]) {
      run.push_back(c.ids[t]);
    } else if (!run.empty()) {
      targets += "[" + tok->decode(run) + "]";
      run.clear();
    }
  }
  EXPECT_EQ(targets, "[fish .<|end|>\n][mice .<|end|>\n]");

  // Plain text: BOS + text + EOS, all targets.
  auto p = train::encode_sft_record({{"text", "the hen eats bugs ."}}, *tok, tmpl.get(), o, "t:5");
  EXPECT_EQ(p.ids.front(), *tok->bos_id);
  EXPECT_EQ(p.ids.back(), eos);
  EXPECT_EQ(p.targets(), static_cast<int64_t>(p.ids.size()) - 1);

  // Truncation keeps the start; malformed records name themselves.
  train::SftEncodeOptions short_o = o;
  short_o.max_length = 4;
  EXPECT_EQ(train::encode_sft_record({{"prompt", "the cat eats"}, {"completion", "corn ."}}, *tok, tmpl.get(), short_o,
                                     "t:6").ids.size(), 4u);
  try {
    train::encode_sft_record({{"prompt", "x"}}, *tok, tmpl.get(), o, "data.jsonl:7");
    FAIL() << "expected an error";
  } catch (const cada::Error& err) {
    EXPECT_NE(std::string(err.what()).find("data.jsonl:7"), std::string::npos) << err.what();
  }
  io::remove_tree(dir);
}

TEST(LmTrainer, PretrainLossFallsOnATinyCorpus) {
  auto dir = workdir("learn");
  auto m = make_model(dir);
  auto cfg = pretrain_config(dir, m);
  cfg.loop.steps = 40;
  auto s = train::run_lm_pretraining(cfg);
  ASSERT_EQ(s.losses.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += s.losses[i] / 5;
    last += s.losses[35 + i] / 5;
  }
  std::cout << "pretrain loss, first 5 steps " << first << ", last 5 steps " << last << ", held-out " << s.eval_loss
            << "\n";
  EXPECT_LT(last, first - 1.5);
  EXPECT_LT(s.eval_loss, first - 1.5);
  EXPECT_EQ(io::count_complete_jsonl_records(cfg.output_dir + "/metrics.jsonl"), 40u);
  EXPECT_TRUE(io::file_exists(cfg.output_dir + "/final/model.safetensors"));
  EXPECT_TRUE(io::file_exists(cfg.output_dir + "/final/tokenizer.model"));
  auto final_model = model::load_model(cfg.output_dir + "/final");
  EXPECT_FALSE(final_model->config().is_sequence_classifier());
  io::remove_tree(dir);
}

TEST(LmTrainer, DryRunLossIsTheMeanOverTheStepsTargetTokens) {
  auto dir = workdir("dry");
  auto m = make_model(dir);
  std::vector<nlohmann::json> recs = {
      {{"prompt", "the cat eats"}, {"completion", "corn ."}},
      {{"prompt", "the dog"}, {"completion", "eats fish and the cow eats grass ."}},
      {{"messages",
        {{{"role", "user"}, {"content", "the owl"}},
         {{"role", "assistant"}, {"content", "eats mice ."}},
         {{"role", "user"}, {"content", "the fox"}},
         {{"role", "assistant"}, {"content", "eats"}}}}}};
  write_lines(dir + "/sft.jsonl", recs);
  train::SftConfig c;
  c.model = m;
  c.data = dir + "/sft.jsonl";
  c.output_dir = dir + "/run";
  c.loop.batch_size = 3;
  c.loop.shuffle = false;
  c.loop.tensorboard = false;
  auto whole = train::run_sft(c, false, true).dry_run;
  c.loop.micro_batch_size = 1;
  auto split = train::run_sft(c, false, true).dry_run;
  EXPECT_FALSE(io::file_exists(c.output_dir));  // a dry run writes nothing
  EXPECT_NEAR(whole["loss"].get<double>(), split["loss"].get<double>(), 1e-6);
  EXPECT_NEAR(whole["grad_norm"].get<double>(), split["grad_norm"].get<double>(), 1e-6);

  // The loss by hand: sum of -log p over each example's targets, divided by all targets.
  auto tok = text::load_tokenizer(m);
  auto tmpl = text::load_chat_template(m);
  auto net = model::load_model(m);
  torch::NoGradGuard ng;
  double nll = 0;
  int64_t n = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    auto e = train::encode_sft_record(recs[i], *tok, tmpl.get(), {}, "r");
    auto ids = at::tensor(std::vector<int64_t>(e.ids.begin(), e.ids.end())).unsqueeze(0);
    model::ForwardInput in;
    in.input_ids = ids;
    auto logp = at::log_softmax(net->head(net->forward(in).hidden)[0], -1);
    for (size_t t = 1; t < e.ids.size(); ++t)
      if (e.mask[t]) {
        nll -= logp[t - 1][e.ids[t]].item<double>();
        ++n;
      }
  }
  EXPECT_EQ(whole["tokens"].get<int64_t>(), n);
  EXPECT_NEAR(whole["loss"].get<double>(), nll / n, 1e-5);
  io::remove_tree(dir);
}

TEST(LmTrainer, PretrainResumeIsBitwiseExact) {
  auto dir = workdir("resume");
  auto m = make_model(dir);
  auto cfg = pretrain_config(dir, m);
  cfg.loop.steps = 6;
  cfg.loop.batch_size = 20;  // the 6 steps cross an epoch boundary (about 50 rows)
  cfg.loop.eval_every = 2;
  cfg.checkpoint.every = 3;
  cfg.checkpoint.keep_last = 5;
  train::run_lm_pretraining(cfg);
  auto straight_metrics = io::read_jsonl(cfg.output_dir + "/metrics.jsonl");
  const std::string straight = dir + "/straight";
  io::rename_path(cfg.output_dir + "/final", straight);
  io::remove_tree(cfg.output_dir + "/checkpoint-6");
  auto s = train::run_lm_pretraining(cfg, /*resume=*/true);
  EXPECT_EQ(s.steps_done, 3);  // only steps 4..6 ran
  expect_same_weights(straight, cfg.output_dir + "/final");
  auto resumed_metrics = io::read_jsonl(cfg.output_dir + "/metrics.jsonl");
  ASSERT_EQ(resumed_metrics.size(), straight_metrics.size());
  for (size_t i = 0; i < straight_metrics.size(); ++i)
    EXPECT_EQ(straight_metrics[i]["train/loss"], resumed_metrics[i]["train/loss"]) << "step " << i + 1;
  io::remove_tree(dir);
}

TEST(LmTrainer, SftResumeIsBitwiseExactWithPacking) {
  auto dir = workdir("sftresume");
  auto m = make_model(dir);
  std::vector<nlohmann::json> recs;
  for (const auto& t : tiny_corpus(40, 9)) {
    const auto cut = t.find(" eats ");
    recs.push_back({{"prompt", t.substr(0, cut)}, {"completion", t.substr(cut + 1)}});
  }
  write_lines(dir + "/sft.jsonl", recs);
  train::SftConfig c;
  c.model = m;
  c.data = dir + "/sft.jsonl";
  c.output_dir = dir + "/run";
  c.encode.max_length = 64;
  c.packing = true;
  c.eval_fraction = 0.1;
  c.loop.steps = 6;
  c.loop.batch_size = 3;
  c.loop.micro_batch_size = 2;
  c.loop.seed = 3;
  c.loop.tensorboard = false;
  c.checkpoint.every = 3;
  c.checkpoint.keep_last = 5;
  c.optim.lr = 5e-3;
  auto first = train::run_sft(c);
  EXPECT_LT(first.last_loss, first.first_loss);
  EXPECT_FALSE(std::isnan(first.eval_loss));
  const std::string straight = dir + "/straight";
  io::rename_path(c.output_dir + "/final", straight);
  io::remove_tree(c.output_dir + "/checkpoint-6");
  auto s = train::run_sft(c, /*resume=*/true);
  EXPECT_EQ(s.steps_done, 3);
  expect_same_weights(straight, c.output_dir + "/final");
  io::remove_tree(dir);
}

// bf16 autocast on CPU (cpu_bf16): the same run in bf16 ends at the float32 run's loss within a
// tolerance; without native bf16 (here forced by CADA_CPU_ISA=avx2 in the ctest entry
// Train.CpuBf16Fallback) "auto" trains in float32, bit for bit the float32 run, and "on" is refused.
TEST(LmTrainer, CpuBf16MatchesFloat32LossOrFallsBack) {
  auto dir = workdir("bf16");
  auto m = make_model(dir);
  auto run = [&](const std::string& mode, const std::string& sub) {
    auto cfg = pretrain_config(dir, m);
    cfg.output_dir = dir + "/" + sub;
    cfg.loop.steps = 30;
    cfg.loop.cpu_bf16 = mode;
    return train::run_lm_pretraining(cfg);
  };
  const auto fp32 = run("off", "fp32");
  const auto bf16 = run("auto", "bf16");
  const bool native = cada::kernels::cpu_has_bf16();
  std::cout << "cpu bf16: " << (native ? cada::kernels::cpu_bf16_name() : "none") << "; final loss fp32 "
            << fp32.losses.back() << " bf16 " << bf16.losses.back() << ", held-out " << fp32.eval_loss << " vs "
            << bf16.eval_loss << "\n";
  ASSERT_EQ(bf16.losses.size(), fp32.losses.size());
  if (native) {
    EXPECT_NE(bf16.losses.back(), fp32.losses.back());  // it did run in bf16
    // Same learning: the held-out loss within 3% and the last steps' mean loss within 3%.
    EXPECT_NEAR(bf16.eval_loss, fp32.eval_loss, 0.03 * fp32.eval_loss);
    double a = 0, b = 0;
    for (size_t i = fp32.losses.size() - 5; i < fp32.losses.size(); ++i) {
      a += fp32.losses[i] / 5;
      b += bf16.losses[i] / 5;
    }
    EXPECT_NEAR(b, a, 0.03 * a);
  } else {
    EXPECT_EQ(bf16.losses, fp32.losses);  // the float32 fallback is the float32 run
    EXPECT_THROW(run("on", "on"), cada::Error);
  }
  EXPECT_THROW(run("fast", "bad"), cada::Error);
  io::remove_tree(dir);
}
