"""Parity: `cada logprobs` against transformers on checkpoints this test creates.

For several architectures (Llama GQA / tied / llama3 and linear rope scaling, Qwen2 with
q/k/v bias, Mistral), random weights are saved by transformers (f32, bf16, sharded), and the
per-token log-probs of random completions are computed by cada in a padded batch and by
transformers one sequence at a time in float32. They must agree within 1e-4.
`cada convert` is checked the other way: transformers must load what cada writes.

CADA_PARITY_DEVICE=cuda computes cada's log-probs on the GPU (still float32).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

TOL = 1e-4

CONFIGS = {
    "llama_gqa": (LlamaConfig, dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, vocab_size=211,
                                    rope_theta=10000.0), torch.float32, None),
    # head_dim 16 with theta 5e5 and original length 64 puts rotary frequencies in all three
    # llama3 bands (kept, smoothed, divided).
    "llama3_tied_bf16": (LlamaConfig, dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                           num_attention_heads=4, num_key_value_heads=4, vocab_size=300,
                                           tie_word_embeddings=True, max_position_embeddings=8192,
                                           rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                         "original_max_position_embeddings": 64},
                                           rope_theta=500000.0), torch.bfloat16, None),
    "llama_linear_sharded": (LlamaConfig, dict(hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                                               num_attention_heads=6, num_key_value_heads=3, head_dim=16,
                                               vocab_size=150, rope_scaling={"rope_type": "linear", "factor": 2.0},
                                               attention_bias=True), torch.float32, "40KB"),
    "qwen2_bias": (Qwen2Config, dict(hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=1, vocab_size=256,
                                     rope_theta=1000000.0, rms_norm_eps=1e-6), torch.float32, None),
    "mistral_f16": (MistralConfig, dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                        num_attention_heads=8, num_key_value_heads=2, vocab_size=199,
                                        sliding_window=16), torch.float16, None),  # window < sequence
}


def make_checkpoint(path, cls, kw, dtype, shard, seed):
    torch.manual_seed(seed)
    cfg = cls(**kw)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # larger than the default init so that mistakes show in the log-probs
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model = model.to(dtype)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(path, **kwargs)


def reference_logprobs(path, records):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    out = []
    with torch.no_grad():
        for r in records:
            ids = torch.tensor([r["prompt_ids"] + r["completion_ids"]])
            logits = model(ids).logits[0].float()
            lp = torch.log_softmax(logits, -1)
            P = len(r["prompt_ids"])
            out.append([lp[P - 1 + i, t].item() for i, t in enumerate(r["completion_ids"])])
    return out


def run_cada(cada, *args):
    res = subprocess.run([cada, *args], capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stdout, res.stderr)
        raise SystemExit(f"cada {' '.join(args)} failed with {res.returncode}")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cada", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    failures = []
    for i, (name, (cls, kw, dtype, shard)) in enumerate(CONFIGS.items()):
        path = os.path.join(a.workdir, name)
        make_checkpoint(path, cls, kw, dtype, shard, seed=100 + i)
        if shard:
            assert os.path.exists(os.path.join(path, "model.safetensors.index.json")), "expected a sharded checkpoint"
        g = torch.Generator().manual_seed(i)
        V = kw["vocab_size"]
        records = []
        for n in range(7):  # different prompt and completion lengths in one batch
            P = int(torch.randint(1, 40, (1,), generator=g))
            C = int(torch.randint(1, 30, (1,), generator=g))
            records.append({"id": f"r{n}", "prompt_ids": torch.randint(0, V, (P,), generator=g).tolist(),
                            "completion_ids": torch.randint(0, V, (C,), generator=g).tolist()})
        inp = os.path.join(a.workdir, f"{name}.in.jsonl")
        out = os.path.join(a.workdir, f"{name}.out.jsonl")
        with open(inp, "w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        run_cada(a.cada, "logprobs", "--model", path, "--input", inp, "--out", out, "--dtype", "float32",
                 "--device", os.environ.get("CADA_PARITY_DEVICE", "cpu"),
                 "--batch-size", "3")
        got = [json.loads(l) for l in open(out)]
        ref = reference_logprobs(path, records)
        worst = 0.0
        for r, g_, want in zip(records, got, ref):
            assert g_["id"] == r["id"] and g_["completion_ids"] == r["completion_ids"]
            assert len(g_["logprobs"]) == len(want)
            worst = max(worst, max(abs(x - y) for x, y in zip(g_["logprobs"], want)))
        status = "ok" if worst <= TOL else "FAIL"
        print(f"{name:24s} max |cada - transformers| = {worst:.2e}  {status}")
        if worst > TOL:
            failures.append(name)

        # Save back: cada convert -> transformers loads it, tensors equal to the original cast.
        conv = os.path.join(a.workdir, name + "_cada")
        run_cada(a.cada, "convert", "--model", path, "--out", conv, "--dtype", "bfloat16",
                 "--max-shard-size", "30000")
        orig = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).state_dict()
        back = AutoModelForCausalLM.from_pretrained(conv, dtype=torch.bfloat16).state_dict()
        changed = [k for k, v in orig.items() if not torch.equal(v.to(torch.bfloat16), back[k])]
        assert os.path.exists(os.path.join(conv, "model.safetensors.index.json")), "expected shards"
        print(f"{name:24s} cada convert -> transformers load: {'ok' if not changed else 'FAIL ' + changed[0]}")
        if changed:
            failures.append(f"{name}: convert changed {changed[0]}")
    if failures:
        print("FAILED:", failures)
        sys.exit(1)
    print("all parity checks passed")


if __name__ == "__main__":
    main()
