// Gradients of a log-likelihood loss through cada's model forward (the one the trainers use),
// for test_new_archs.py to compare with transformers': reads a checkpoint and records
// [{prompt_ids, completion_ids}], computes loss = -mean over records of the summed completion
// log-probs (model::token_logprobs), and writes every parameter's gradient under its HF name
// to OUT/model.safetensors (for an adapter folder: the adapter weights' gradients under PEFT's names;
// test_lora.py). With CADA_GRAD_CHECKPOINTING=1 the forward checkpoints every decoder layer.
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cada/io/checkpoint.h"
#include "cada/model/loader.h"
#include "cada/model/logprobs.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: model_grad_check MODEL_DIR records.json OUT_DIR\n";
    return 2;
  }
  using namespace cada;
  auto net = model::load_model(argv[1], {"cpu", "float32"});
  net->train();
  if (const char* c = std::getenv("CADA_GRAD_CHECKPOINTING")) net->gradient_checkpointing = std::string(c) == "1";
  const auto records = nlohmann::json::parse(std::ifstream(argv[2]));
  at::Tensor loss = at::zeros({}, at::kFloat);
  for (const auto& r : records) {
    const auto prompt = r.at("prompt_ids").get<std::vector<int64_t>>();
    const auto completion = r.at("completion_ids").get<std::vector<int64_t>>();
    std::vector<int64_t> ids = prompt;
    ids.insert(ids.end(), completion.begin(), completion.end());
    model::ForwardInput in;
    in.input_ids = at::tensor(ids, at::kLong).view({1, -1});
    auto hidden = net->forward(in).hidden[0];  // (L,C)
    const int64_t P = static_cast<int64_t>(prompt.size()), C = static_cast<int64_t>(completion.size());
    auto lp = model::token_logprobs(*net, hidden.narrow(0, P - 1, C), at::tensor(completion, at::kLong));
    loss = loss - lp.sum() / static_cast<double>(records.size());
  }
  loss.backward();
  std::vector<at::Tensor> keep;
  std::vector<io::TensorData> grads;
  // A LoRA adapter folder: the adapters' gradients under PEFT's names (the base is frozen).
  auto named = net->has_lora() ? model::lora_named_parameters(*net) : net->hf_named_parameters();
  if (net->has_lora())
    for (auto& [name, p] : named) name = "base_model.model." + name;
  for (auto& [name, p] : named) {
    auto g = p.grad().defined() ? p.grad().contiguous() : at::zeros_like(p);
    keep.push_back(g);
    grads.push_back(io::TensorData{name, io::DType::F32, std::vector<int64_t>(g.sizes().begin(), g.sizes().end()),
                                   g.data_ptr(), static_cast<size_t>(g.nbytes())});
  }
  io::write_checkpoint(argv[3], grads);
  std::cout << "loss " << loss.item<double>() << "\n";
  return 0;
}
