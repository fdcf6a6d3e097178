"""`cada pretrain` end to end: the loss falls clearly on the tiny world's corpus, the result
loads in transformers with the same log-probs as cada, and a run killed with SIGKILL in a
checkpoint write resumes to the uninterrupted run's weights bitwise."""
import argparse
import json
import os
import shutil
import signal
import subprocess

import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(args, env=None, check=True):
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"{' '.join(args)} failed with {p.returncode}")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cada", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    w = a.workdir
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 512, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    sh([a.cada, "init-model", "--config", f"{w}/arch.json", "--train-tokenizer", f"{ROOT}/data/tiny-world/corpus.jsonl",
        "--vocab-size", "400", "--out", f"{w}/base", "--seed", "1"])
    docs = [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/corpus.jsonl")][:600]
    with open(f"{w}/corpus.jsonl", "w") as f:
        for d in docs:
            f.write(json.dumps({"text": d["text"]}) + "\n")
    cfg = {"model": f"{w}/base", "corpus": f"{w}/corpus.jsonl", "output_dir": f"{w}/A", "seq_len": 64,
           "batch_size": 8, "steps": 40, "eval_every": 20, "optim": {"lr": 3e-3, "schedule": "cosine", "warmup_steps": 4},
           "checkpoint": {"every": 20, "keep_last": 2}, "tensorboard": False}
    json.dump(cfg, open(f"{w}/pt.json", "w"))
    p = sh([a.cada, "pretrain", "--config", f"{w}/pt.json"])
    ms = [json.loads(l) for l in open(f"{w}/A/metrics.jsonl")]
    # The memory plan at start, the peak after the first step, memory/* on every line.
    assert "pretrain memory plan (estimate)" in p.stderr and "memory after the first step: peak RSS" in p.stderr, p.stderr[-1500:]
    assert all(m["memory/peak_allocated_gib"] > 0 and m["memory/plan_gib"] > 0 for m in ms), ms[0]
    plan = sh([a.cada, "pretrain", "--config", f"{w}/pt.json", "output_dir=" + f"{w}/plan_only", "--memory-plan"]).stdout
    assert "activations" in plan and not os.path.exists(f"{w}/plan_only"), plan
    first, last = ms[0]["train/loss"], sum(m["train/loss"] for m in ms[-5:]) / 5
    print(f"loss {first:.3f} -> {last:.3f} (last 5 steps), validation {ms[-1]['eval/loss']:.3f}")
    assert last < first - 1.5, (first, last)

    # transformers loads the result and agrees on log-probs.
    ids = [1, 20, 30, 40, 50, 60, 70]
    inp = f"{w}/lp.jsonl"
    open(inp, "w").write(json.dumps({"prompt_ids": ids[:3], "completion_ids": ids[3:]}) + "\n")
    sh([a.cada, "logprobs", "--model", f"{w}/A/final", "--input", inp, "--out", f"{w}/lp_out.jsonl"])
    got = json.loads(open(f"{w}/lp_out.jsonl").read())["logprobs"]
    m = AutoModelForCausalLM.from_pretrained(f"{w}/A/final", dtype=torch.float32).eval()
    with torch.no_grad():
        lp = torch.log_softmax(m(torch.tensor([ids])).logits[0], -1)
    want = [lp[2 + i, t].item() for i, t in enumerate(ids[3:])]
    worst = max(abs(x - y) for x, y in zip(got, want))
    print(f"transformers loads the pre-trained model; max |log-prob difference| {worst:.2e}")
    assert worst < 1e-4

    env = dict(os.environ, CADA_TEST_KILL_IN_CHECKPOINT="20")
    p = sh([a.cada, "pretrain", "--config", f"{w}/pt.json", f"output_dir={w}/B"], env=env, check=False)
    assert p.returncode == -signal.SIGKILL, p.returncode
    sh([a.cada, "pretrain", "--config", f"{w}/pt.json", f"output_dir={w}/B", "--resume"])
    ta, tb = load_file(f"{w}/A/final/model.safetensors"), load_file(f"{w}/B/final/model.safetensors")
    assert not [k for k in ta if not (ta[k] == tb[k]).all()], "resumed pre-training differs"
    print("SIGKILL during a checkpoint write + --resume gives the uninterrupted run's weights bitwise")


if __name__ == "__main__":
    main()
