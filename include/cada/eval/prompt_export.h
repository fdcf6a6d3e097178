// `cada prompts`: public data sets (and benchmark files) -> one prompt-record JSONL that the
// chains, SFT and GRPO configs read (their readers take the project's records only).
//
//   {"output": "data/external/prompts/train.jsonl", "data_dir": "",
//    "datasets": [{"name": "pku", "path": "data/external/PKU-SafeRLHF/train.jsonl",
//                  "format": "pku_saferlhf", "sample": 3000, "seed": 1},
//                 {"name": "alpaca", "path": "data/external/alpaca_data.json", "format": "alpaca",
//                  "sample": 2000, "seed": 1}]}
//
// Each dataset entry is an eval dataset entry (benchmarks.h: name, path, format, label, where,
// limit, sample, seed; `jailbreaks` has no use here and must stay null). One line per record:
//   {"id": "<dataset>-<id>", "prompt" | "messages", "label", "kind" (= label), "category",
//    "source", "dataset", "where", "meta": {the source's other fields}}
// Ids are unique across the file; a prompt text met twice is kept once (the first).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cada/eval/benchmarks.h"

namespace cada::eval {

struct PromptsConfig {
  std::string output;                                  // the JSONL written (atomically)
  std::string data_dir;                                // base folder of relative dataset paths
  nlohmann::json datasets = nlohmann::json::array();   // DatasetSpec objects
  template <class V> void visit(V& v) {
    v("output", output, "the prompt-record JSONL written");
    v("data_dir", data_dir, "folder that relative dataset paths start from (empty = the working directory)");
    v("datasets", datasets, "list of {name, path, format, label, where, limit, sample, seed} (docs/eval.md)");
  }
};

// Reads a config (comments allowed), applies key=value overrides, checks every dataset entry;
// throws one error listing every problem.
PromptsConfig load_prompts_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The records of every dataset as JSONL lines, in config order. Returns the text and fills
// `counts` with one "name: N prompts (H harmful, B benign)" line per dataset.
std::string export_prompts(const PromptsConfig& cfg, std::vector<std::string>& counts);

}  // namespace cada::eval
