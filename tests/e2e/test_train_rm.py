"""`cada train-rm` end to end: a reward model trained on the tiny world's preference pairs is
clearly above chance on held-out pairs (templates never seen in training), the folder it
writes loads in transformers (AutoModelForSequenceClassification) with the same scores as cada
(`cada score` with an `rm` reward) within 1e-4, and a run killed with SIGKILL in a checkpoint
write resumes to the uninterrupted run's weights bitwise."""
import argparse
import json
import os
import shutil
import signal
import subprocess

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"{' '.join(args)} failed with {p.returncode}")
    return p.stdout


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
    recs = [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/preferences.jsonl")]
    train = [r for r in recs if r["split"] == "train"][::4]
    test = [r for r in recs if r["split"] == "test"][::3]
    with open(f"{w}/prefs.jsonl", "w") as f:
        for r in train + test:
            f.write(json.dumps(r) + "\n")
    cfg = {"model": f"{w}/base", "output_dir": f"{w}/rm", "data": f"{w}/prefs.jsonl", "steps": 30, "batch_size": 16,
           "eval_every": 15, "optim": {"lr": 1e-3, "schedule": "cosine", "warmup_steps": 5}, "tensorboard": False,
           "checkpoint": {"every": 10, "keep_last": 3}}
    json.dump(cfg, open(f"{w}/rm.json", "w"))
    p = subprocess.run([a.cada, "train-rm", "--config", f"{w}/rm.json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "train-rm memory plan (estimate)" in p.stderr and "memory after the first step" in p.stderr, p.stderr[-1500:]
    plan = sh([a.cada, "train-rm", "--config", f"{w}/rm.json", "--memory-plan"])
    assert "logits" not in plan and "activations" in plan, plan  # a score head, no vocabulary
    evals = [json.loads(l)["eval/accuracy"] for l in open(f"{w}/rm/metrics.jsonl") if "eval/accuracy" in l]
    acc = evals[-1]
    print(f"held-out pairwise accuracy {acc:.3f} on {len(test)} pairs (chance 0.5); after 15 steps {evals[0]:.3f}")
    assert acc >= 0.8, f"reward model not clearly above chance: {acc}"

    # transformers loads the folder and scores like cada.
    sample = test[:6]
    with open(f"{w}/gens.jsonl", "w") as f:
        for r in sample:
            f.write(json.dumps({"prompt": r["prompt"], "response": r["chosen"], "label": r["label"]}) + "\n")
    json.dump({"rewards": [{"name": "rm", "type": "rm", "model": f"{w}/rm/final", "on": "response"}]},
              open(f"{w}/rewards.json", "w"))
    sh([a.cada, "score", "--rewards", f"{w}/rewards.json", "--input", f"{w}/gens.jsonl", "--out", f"{w}/scored.jsonl"])
    got = [json.loads(l) for l in open(f"{w}/scored.jsonl")]
    tok = AutoTokenizer.from_pretrained(f"{w}/rm/final")
    model = AutoModelForSequenceClassification.from_pretrained(f"{w}/rm/final", dtype=torch.float32).eval()
    worst = max_score_diff(tok, model, sample, got)
    print(f"transformers loads cada's reward model; max |score difference| {worst:.2e}")
    assert worst < 1e-4, worst

    # Killed while writing the step-20 checkpoint, then resumed: same final weights, bitwise.
    env = dict(os.environ, CADA_TEST_KILL_IN_CHECKPOINT="20")
    p = subprocess.run([a.cada, "train-rm", "--config", f"{w}/rm.json", f"output_dir={w}/rmB"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.returncode
    assert os.path.exists(f"{w}/rmB/checkpoint-10/trainer_state.json")
    sh([a.cada, "train-rm", "--config", f"{w}/rm.json", f"output_dir={w}/rmB", "--resume"])
    from safetensors.numpy import load_file
    ta, tb = load_file(f"{w}/rm/final/model.safetensors"), load_file(f"{w}/rmB/final/model.safetensors")
    diff = [k for k in ta if not (ta[k] == tb[k]).all()]
    assert not diff, f"resumed reward model differs: {diff[:3]}"
    print("SIGKILL during a checkpoint write + --resume gives the uninterrupted run's weights bitwise")
    check_lora(a, w, cfg, sample)
    check_bf16(a, w, cfg, acc)


def check_bf16(a, w, cfg, acc):
    """cpu_bf16=auto: in bf16 autocast where the CPU has native bf16 (the log says which), else
    float32 with a notice; either way the reward model learns as well as in float32. Without
    native bf16 the auto run is the float32 run above, step for step, so the notice (from the
    memory plan, which resolves the precision as training does) is what is left to check."""
    json.dump(dict(cfg, output_dir=f"{w}/rmH", cpu_bf16="auto"), open(f"{w}/rm_bf16.json", "w"))
    plan = subprocess.run([a.cada, "train-rm", "--config", f"{w}/rm_bf16.json", "--memory-plan"], capture_output=True,
                          text=True)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    if "training in float32" in plan.stderr:
        print("cpu_bf16=auto: no native bf16 on this CPU; the notice is logged and training is the float32 run")
        return
    p = subprocess.run([a.cada, "train-rm", "--config", f"{w}/rm_bf16.json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "train-rm in bf16 autocast" in p.stderr, p.stderr[-1500:]
    got = [json.loads(l)["eval/accuracy"] for l in open(f"{w}/rmH/metrics.jsonl") if "eval/accuracy" in l][-1]
    print(f"cpu_bf16=auto (bf16): held-out accuracy {got:.3f} vs {acc:.3f}")
    assert got >= acc - 0.05, f"the bf16 reward model learned less: {got:.3f} vs {acc:.3f} in float32"


def max_score_diff(tok, model, sample, got):
    """Largest |transformers score - cada score| over the sample's chosen responses."""
    worst = 0.0
    for r, g in zip(sample, got):
        text = tok.apply_chat_template([{"role": "user", "content": r["prompt"]},
                                        {"role": "assistant", "content": r["chosen"]}], tokenize=False)
        ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            want = model(input_ids=ids).logits[0, 0].item()
        cada_score = g["scores"]["rm"] if "scores" in g and isinstance(g["scores"], dict) else g["completions"][0]["scores"]["rm"]
        worst = max(worst, abs(want - cada_score))
    return worst


def check_lora(a, w, cfg, sample):
    """train-rm with LoRA: the final folder is a SEQ_CLS adapter (score head in modules_to_save) that
    cada scores with and PEFT loads on the causal base, giving the same scores."""
    from peft import PeftModel
    lcfg = dict(cfg, output_dir=f"{w}/rmL", lora={"r": 8, "alpha": 16}, gradient_checkpointing=True,
                optim={"lr": 5e-3, "schedule": "cosine", "warmup_steps": 5})
    json.dump(lcfg, open(f"{w}/rm_lora.json", "w"))
    sh([a.cada, "train-rm", "--config", f"{w}/rm_lora.json"])
    final = f"{w}/rmL/final"
    assert os.path.exists(f"{final}/adapter_model.safetensors"), os.listdir(final)
    acc = [json.loads(l)["eval/accuracy"] for l in open(f"{w}/rmL/metrics.jsonl") if "eval/accuracy" in l][-1]
    print(f"LoRA reward model: held-out pairwise accuracy {acc:.3f}")
    assert acc >= 0.7, f"LoRA reward model not clearly above chance: {acc}"
    json.dump({"rewards": [{"name": "rm", "type": "rm", "model": final, "on": "response"}]},
              open(f"{w}/rewards_lora.json", "w"))
    sh([a.cada, "score", "--rewards", f"{w}/rewards_lora.json", "--input", f"{w}/gens.jsonl",
        "--out", f"{w}/scored_lora.jsonl"])
    got = [json.loads(l) for l in open(f"{w}/scored_lora.jsonl")]
    tok = AutoTokenizer.from_pretrained(f"{w}/base")
    base = AutoModelForSequenceClassification.from_pretrained(f"{w}/base", num_labels=1, dtype=torch.float32,
                                                              pad_token_id=tok.pad_token_id or tok.eos_token_id)
    model = PeftModel.from_pretrained(base, final).eval()
    worst = max_score_diff(tok, model, sample, got)
    print(f"PEFT loads cada's LoRA reward model on the causal base; max |score difference| {worst:.2e}")
    assert worst < 1e-4, worst


if __name__ == "__main__":
    main()
