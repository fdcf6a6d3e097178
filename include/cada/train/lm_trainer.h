// Supervised language-model trainers (docs/safety.md):
//
//   `cada pretrain`  next-token loss on a corpus: documents tokenised as BOS + text + EOS and
//                    packed back to back into rows of seq_len tokens (GPT-style packing: a
//                    document may span two rows and attention crosses document boundaries);
//   `cada sft`       completion-only loss on chat records: loss on the completion of
//                    {prompt | messages, completion | response} pairs (the prompt rendered with
//                    the chat template + generation prompt, the completion closed by the
//                    template's end of turn), or on the assistant turns of "messages"
//                    conversations; optional packing of whole examples.
//
// The loss of an optimizer step is the mean over every target token of the step (all micro
// batches together): each micro batch adds sum(-log p) / (target tokens of the step), which is
// transformers' num_items_in_batch normalisation that TRL's SFTTrainer uses. Checkpoints hold the
// weights, the optimizer and the data position (epoch, cursor of a seeded per-epoch permutation),
// so `--resume` continues exactly (bitwise on CPU). The trained model goes to output_dir/final
// (HF layout + the tokenizer files of the initial model), where the next stage takes it as `model`.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"
#include "cada/train/checkpoint.h"
#include "cada/train/memory_plan.h"
#include "cada/train/optim.h"
#include "cada/train/trainable.h"
#include "cada/util/config.h"

namespace cada::train {

// ---------------------------------------------------------------------------------------------
// Data

// One training row: token ids and, per position t, whether ids[t] is a target (predicted from
// ids[0..t-1]). mask[0] is always 0: nothing in the row predicts its first token.
struct LmExample {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  int64_t targets() const;  // number of target tokens
};

// Concatenates the documents (already BOS/EOS-wrapped) and cuts the stream into rows of exactly
// seq_len tokens; the remainder shorter than a row is dropped (as transformers' group_texts). In
// every row all tokens but the first are targets.
std::vector<LmExample> pack_documents(const std::vector<std::vector<int32_t>>& docs, int64_t seq_len);

// Packs whole examples (each at most seq_len tokens) into rows of at most seq_len tokens,
// first-fit in the given order, never splitting an example. Each example keeps its own mask
// and its first token is never a target (no loss across an example boundary). Attention still
// crosses boundaries inside a row (no block-diagonal mask), and positions run 0..len-1 per row.
std::vector<LmExample> pack_examples(const std::vector<LmExample>& examples, int64_t seq_len);

struct SftEncodeOptions {
  int64_t max_length = 1024;         // tokens kept per example, from the start (TRL: keep_start)
  bool completion_only_loss = true;  // prompt-completion records: loss on the completion only
  bool assistant_only_loss = true;   // "messages" records: loss on the assistant turns only
};

// One SFT record to an example. Accepted shapes, first match wins:
//   {"prompt": str | [messages], "completion" | "response": str | [assistant messages]}
//       the prompt (a string is one user turn; "messages" may stand in for "prompt") rendered with
//       add_generation_prompt, the completion as the assistant turn, so it ends with the template's
//       end of turn (e.g. "<|end|>\n", "<|im_end|>\n"); targets = the tokens after the prompt;
//   {"messages": [...]}   targets = the tokens of every assistant turn (from after its
//       generation prompt up to the next turn), as TRL's assistant_only_loss;
//   {"text": str}         plain language modelling: BOS + text + EOS, every token a target.
// Ids are tokenised from the full rendered text without added special tokens (as
// apply_chat_template(tokenize=True)); the prompt/completion boundary is the token length of the
// rendered prompt alone (TRL's rule). Throws naming `where` for malformed records.
LmExample encode_sft_record(const nlohmann::json& rec, const text::Tokenizer& tok, const text::ChatTemplate* tmpl,
                            const SftEncodeOptions& opts, const std::string& where);

// Reads the documents of a corpus: JSONL with a string field `text_field`, or plain text with one
// document per non-empty line.
std::vector<std::string> read_corpus(const std::string& path, const std::string& text_field = "text");


// Helpers shared with the reward-model trainer.

// Writes the model (float32, HF layout) and the tokenizer files of tokenizer_dir to
// output_dir/final, replacing an older one only once the new folder is complete; returns its path.
std::string write_final_model(model::Transformer& model, const std::string& output_dir, const std::string& tokenizer_dir);

// On resume: cuts output_dir/metrics.jsonl back to the steps <= step (they are logged again).
void truncate_metrics_after(const std::string& output_dir, int64_t step);

// ---------------------------------------------------------------------------------------------
// Configs

// The loop shared by the supervised trainers (keys sit at the top level of their configs).
struct SupervisedLoopOptions {
  int64_t steps = 0;                 // optimizer steps; 0 = as many as `epochs` take
  double epochs = 1.0;               // passes over the training rows when steps = 0
  int64_t batch_size = 16;           // rows (or examples, pairs) per optimizer step
  int64_t micro_batch_size = 0;      // rows per forward/backward (0 = batch_size); gradients accumulate
  int64_t eval_every = 100;          // steps between held-out evaluations (0 = only at the end)
  int64_t log_every = 1;             // steps between console lines
  uint64_t seed = 0;
  bool shuffle = true;               // a fresh permutation of the rows each epoch
  std::string device = "cpu";
  bool bf16_autocast = true;         // on CUDA: bf16 autocast over fp32 master weights
  std::string cpu_bf16 = "off";      // on CPU: off | auto | on (train/precision.h)
  int threads = 0;
  bool tensorboard = true;
  double peak_tflops = 0;            // MFU denominator (0 = auto on CUDA, none on CPU)
  template <class V> void visit(V& v) {
    v("steps", steps, "optimizer steps (0 = as many as 'epochs' take)", config::Range::at_least(0));
    v("epochs", epochs, "passes over the training data when steps = 0 (fractions allowed)", config::Range::above(0));
    v("batch_size", batch_size, "sequences per optimizer step", config::Range::at_least(1));
    v("micro_batch_size", micro_batch_size, "sequences per forward/backward (0 = batch_size); gradients accumulate", config::Range::at_least(0));
    v("eval_every", eval_every, "steps between held-out evaluations (0 = only at the end)", config::Range::at_least(0));
    v("log_every", log_every, "steps between console lines", config::Range::at_least(1));
    v("seed", seed, "seed of the data split and order (and of fresh heads)");
    v("shuffle", shuffle, "new permutation of the training data each epoch (seeded)");
    v("device", device, "cpu, cuda or cuda:N");
    v("bf16_autocast", bf16_autocast, "bf16 autocast on CUDA");
    v("cpu_bf16", cpu_bf16, "bf16 autocast on CPU: off, auto (when the CPU has AMX / AVX512-BF16) or on");
    v("threads", threads, "intra-op CPU threads (0 = all available)", config::Range::at_least(0));
    v("tensorboard", tensorboard, "write TensorBoard event files in output_dir");
    v("peak_tflops", peak_tflops, "device peak for MFU (0 = auto for CUDA, none on CPU)", config::Range::at_least(0));
  }
};

inline OptimOptions lm_default_optim(double lr, int64_t warmup) {
  OptimOptions o;
  o.lr = lr;
  o.schedule = "cosine";
  o.warmup_steps = warmup;
  o.min_lr_ratio = 0.1;
  return o;
}

struct LmPretrainConfig {
  std::string model;                 // initial model folder (e.g. from `cada init-model`)
  std::string corpus;                // .jsonl with "text", or plain text (one document per line)
  std::string text_field = "text";
  std::string eval_corpus;           // held-out documents ("" = eval_fraction of corpus)
  std::string output_dir = "runs/pretrain";
  int64_t seq_len = 256;
  bool add_bos = true, add_eos = true;
  double eval_fraction = 0.02;       // documents held out for the validation loss
  SupervisedLoopOptions loop;
  OptimOptions optim = lm_default_optim(1e-3, 20);
  CheckpointOptions checkpoint;
  TrainableOptions trainable;
  template <class V> void visit(V& v) {
    v("model", model, "initial model folder (e.g. written by `cada init-model`, or a previous final/)");
    v("corpus", corpus, "documents: .jsonl with a 'text' string, or plain text with one document per line");
    v("text_field", text_field, "JSONL field holding a document's text");
    v("eval_corpus", eval_corpus, "held-out documents for the validation loss (empty = eval_fraction of corpus)");
    v("output_dir", output_dir, "run directory; the trained model goes to output_dir/final");
    v("seq_len", seq_len, "tokens per packed training row", config::Range::at_least(2));
    v("add_bos", add_bos, "start every document with BOS");
    v("add_eos", add_eos, "end every document with EOS");
    v("eval_fraction", eval_fraction, "share of documents held out for the validation loss (seeded)", config::Range::half_open(0, 1));
    loop.visit(v);
    v.section("optim", optim, "AdamW and learning-rate schedule");
    v.section("checkpoint", checkpoint, "checkpoints");
    trainable.visit(v);
  }
};

struct SftConfig {
  std::string model;                 // policy initialisation (HF folder with tokenizer + chat template)
  std::string chat_template;         // override the detected template
  std::string data;                  // training records (JSONL)
  std::string eval_data;             // held-out records ("" = the split field, else eval_fraction of data)
  std::string output_dir = "runs/sft";
  std::string completion_field;      // field holding the completion ("" = completion | response)
  std::string eval_split_field = "split";  // records whose field equals eval_split_value are held out
  std::string eval_split_value = "test";
  double eval_fraction = 0.0;
  SftEncodeOptions encode;
  bool packing = false;              // concatenate whole examples into rows of max_length tokens
  SupervisedLoopOptions loop;
  OptimOptions optim = lm_default_optim(1e-4, 10);
  CheckpointOptions checkpoint;
  TrainableOptions trainable;
  template <class V> void visit(V& v) {
    v("model", model, "initial model folder (HF layout with tokenizer and chat template)");
    v("chat_template", chat_template, "override the chat template detected in the model folder");
    v("data", data, "training records (JSONL): {prompt|messages, completion|response}, {messages}, or {text}");
    v("eval_data", eval_data, "held-out records for the validation loss (empty = the split field, else eval_fraction)");
    v("output_dir", output_dir, "run directory; the trained model goes to output_dir/final");
    v("completion_field", completion_field,
      "field holding the completion, e.g. safe_response (empty = 'completion' or 'response')");
    v("eval_split_field", eval_split_field, "record field that marks held-out records (empty = none)");
    v("eval_split_value", eval_split_value, "value of that field for held-out records");
    v("eval_fraction", eval_fraction, "share of records held out when none is marked and eval_data is empty (seeded)", config::Range::half_open(0, 1));
    v("max_length", encode.max_length, "tokens kept per example (from the start, as TRL); also the packed row length", config::Range::at_least(2));
    v("completion_only_loss", encode.completion_only_loss, "prompt-completion records: loss on the completion only");
    v("assistant_only_loss", encode.assistant_only_loss, "messages records: loss on the assistant turns only");
    v("packing", packing, "concatenate whole examples into rows of max_length tokens (attention crosses examples)");
    loop.visit(v);
    v.section("optim", optim, "AdamW and learning-rate schedule");
    v.section("checkpoint", checkpoint, "checkpoints");
    trainable.visit(v);
  }
};

// ---------------------------------------------------------------------------------------------
// Running

struct LmTrainSummary {
  int64_t steps_done = 0;            // steps this call ran
  int64_t total_steps = 0;
  std::vector<double> losses;        // per step this call ran
  double first_loss = 0, last_loss = 0;
  double eval_loss = 0;              // the last held-out loss (NaN without held-out data)
  int64_t train_rows = 0, eval_rows = 0;
  double seconds = 0;
  std::string final_dir, last_checkpoint;
  nlohmann::json dry_run;            // dry runs: {loss, grad_norm, tokens, sequences, grad_norms{name: norm}}
};

// Trains (or, with resume, continues from the newest complete checkpoint in output_dir).
// dry_run: computes the loss and gradients of the first optimizer step only (no update, nothing
// written) and returns them in summary.dry_run (used by the parity tests).
LmTrainSummary run_lm_pretraining(const LmPretrainConfig& cfg, bool resume = false, bool dry_run = false);
LmTrainSummary run_sft(const SftConfig& cfg, bool resume = false, bool dry_run = false);

// The runs' memory plans from the model's config.json alone (no weights loaded): what the runs
// print when they start and `--memory-plan` prints.
MemoryPlan lm_pretraining_memory_plan(const LmPretrainConfig& cfg);
MemoryPlan sft_memory_plan(const SftConfig& cfg);

}  // namespace cada::train
