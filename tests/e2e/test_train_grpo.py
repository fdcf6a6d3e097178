"""`cada train` end to end on a tiny model: a run killed with SIGKILL in the middle of a
checkpoint write resumes to exactly the parameters of an uninterrupted run, the previous
checkpoint stays usable, and the TensorBoard files read back with the real tensorboard reader
(expected tags and steps)."""
import argparse
import glob
import json
import re
import os
import shutil
import signal
import subprocess
import sys

from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


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
    # A small model with a tokenizer trained on the tiny world.
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    sh([a.cada, "init-model", "--config", f"{w}/arch.json", "--train-tokenizer",
        f"{ROOT}/data/tiny-world/corpus.jsonl", "--vocab-size", "400", "--out", f"{w}/model", "--seed", "1"])
    prompts = [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/prompts.jsonl")][:24]
    with open(f"{w}/prompts.jsonl", "w") as f:
        for p in prompts:
            f.write(json.dumps({k: p[k] for k in ("id", "prompt", "label", "category")}) + "\n")
    cfg = {
        "model": f"{w}/model", "output_dir": f"{w}/A",
        "rewards": {"rewards": [{"name": "refusal", "type": "refusal", "method": "xstest"},
                                {"name": "length", "type": "length", "max_len": 16, "cache": 8, "unit": "characters"},
                                {"name": "total", "type": "composite",
                                 "terms": [{"reward": "refusal", "weight": 1.0, "when": "harmful"},
                                           {"reward": "length", "weight": 1.0}]}]},
        "data": {"train": f"{w}/prompts.jsonl"},
        "rollout": {"num_generations": 4, "max_completion_length": 12},
        "loss": {"beta": 0.04, "loss_type": "grpo"},
        "optim": {"lr": 1e-3, "schedule": "cosine", "warmup_steps": 1},
        "train": {"steps": 4, "prompts_per_step": 3, "micro_batch_size": 6, "num_iterations": 2, "seed": 3},
        "checkpoint": {"every": 2, "keep_last": 3},
    }
    # // comments are allowed in configs
    open(f"{w}/grpo.json", "w").write("// tiny GRPO run\n" + json.dumps(cfg, indent=1))
    p = sh([a.cada, "train", "--config", f"{w}/grpo.json"])
    check_memory_plan(a, w, cfg, p.stderr)
    # The same run, killed while writing the step-4 checkpoint, then resumed.
    env = dict(os.environ, CADA_TEST_KILL_IN_CHECKPOINT="4")
    p = sh([a.cada, "train", "--config", f"{w}/grpo.json", f"output_dir={w}/B"], env=env, check=False)
    assert p.returncode == -signal.SIGKILL, f"expected SIGKILL, got {p.returncode}: {p.stderr[-500:]}"
    assert os.path.exists(f"{w}/B/checkpoint-2/trainer_state.json"), "previous checkpoint must survive"
    assert not os.path.exists(f"{w}/B/checkpoint-4"), "a half-written checkpoint must not look complete"
    assert glob.glob(f"{w}/B/checkpoint-4.tmp-*"), "the interrupted write should have left its temporary"
    sh([a.cada, "train", "--config", f"{w}/grpo.json", f"output_dir={w}/B", "--resume"])
    ta, tb = load_file(f"{w}/A/checkpoint-4/model.safetensors"), load_file(f"{w}/B/checkpoint-4/model.safetensors")
    assert ta.keys() == tb.keys()
    diff = [k for k in ta if not (ta[k] == tb[k]).all()]
    assert not diff, f"resumed parameters differ from the straight run: {diff[:3]}"
    assert not glob.glob(f"{w}/B/checkpoint-4.tmp-*"), "temporaries are cleaned up"
    steps = [json.loads(l)["step"] for l in open(f"{w}/B/metrics.jsonl")]
    assert steps == [1, 2, 3, 4], f"metrics.jsonl steps after resume: {steps}"
    print("SIGKILL during a checkpoint write + --resume gives the straight run's parameters bitwise")

    check_lora_resume(a, w, cfg)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(f"{w}/A")
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ["train/reward", "train/kl", "train/clip_ratio/region", "train/entropy", "train/completion_length",
                "perf/tokens_per_s", "time/generate_s", "time/update_s", "time/ref_logprobs_s", "train/reward/refusal"]:
        assert tag in tags, f"missing TensorBoard tag {tag}; have {tags}"
    ev = acc.Scalars("train/reward")
    assert [e.step for e in ev] == [1, 2, 3, 4], [e.step for e in ev]
    metrics = [json.loads(l) for l in open(f"{w}/A/metrics.jsonl")]
    assert all(abs(e.value - m["train/reward"]) < 1e-5 for e, m in zip(ev, metrics))
    print(f"TensorBoard: {len(tags)} scalar tags read back with steps 1..4")

    # Bad configs are refused with every problem listed, before any compute.
    bad = dict(cfg, optim={"lr": "fast", "shedule": "cosine"}, epochs=3)
    open(f"{w}/bad.json", "w").write(json.dumps(bad))
    p = sh([a.cada, "train", "--config", f"{w}/bad.json"], check=False)
    assert p.returncode == 1 and "3 problem(s)" in p.stderr and "unknown key 'optim.shedule'" in p.stderr, p.stderr
    print("bad config refused:", p.stderr.strip().splitlines()[0])


def plan_total(text):
    """The total of a printed memory plan, in GiB."""
    m = re.search(r"^\s+total\s+([0-9.]+) ([KMG])iB", text, re.M)
    assert m, f"no total in the memory plan: {text}"
    return float(m.group(1)) / {"K": 1024 ** 2, "M": 1024, "G": 1}[m.group(2)]


def check_memory_plan(a, w, cfg, run_log):
    """--memory-plan prints the estimate without loading weights or writing the run; a run prints
    the same plan at start, then the measured peak after its first step, and logs memory/* per step."""
    p = sh([a.cada, "train", "--config", f"{w}/grpo.json", f"output_dir={w}/MP", "--memory-plan"])
    assert not os.path.exists(f"{w}/MP"), "--memory-plan must not create the run directory"
    for item in ("weights", "gradients", "optimizer", "reference", "KV cache", "activations", "logits"):
        assert re.search(rf"^\s+{item}\s+[0-9.]+ [KMG]iB", p.stdout, re.M), f"no {item} line:\n{p.stdout}"
    assert plan_total(run_log) == plan_total(p.stdout), "the run printed another plan than --memory-plan"
    assert "memory after the first step: peak RSS" in run_log, run_log[-1500:]
    rows = [json.loads(l) for l in open(f"{w}/A/metrics.jsonl")]
    for r in rows:
        assert r["memory/peak_allocated_gib"] > 0 and abs(r["memory/plan_gib"] / plan_total(p.stdout) - 1) < 0.01, r
    assert rows[-1]["memory/peak_allocated_gib"] >= rows[0]["memory/peak_allocated_gib"], "a peak never falls"
    # Under LoRA the reference is the base with the adapters off: no reference copy is planned.
    lora = dict(cfg, lora={"r": 4}, gradient_checkpointing=True)
    open(f"{w}/lora_plan.json", "w").write(json.dumps(lora))
    q = sh([a.cada, "train", "--config", f"{w}/lora_plan.json", "--memory-plan"])
    assert "reference" not in q.stdout and "trainable in float32" in q.stdout and "checkpointed" in q.stdout, q.stdout
    assert plan_total(q.stdout) < plan_total(p.stdout), (q.stdout, p.stdout)
    # A model whose embedding has more rows than its tokenizer has tokens (real checkpoints pad
    # theirs; the GPU memory check builds Llama-3-8B's 128256-row head on a small tokenizer):
    # it trains, and the ids past the tokenizer decode to nothing.
    arch = json.load(open(f"{w}/arch.json"))
    json.dump(dict(arch, vocab_size=1000), open(f"{w}/arch_padded.json", "w"))
    sh([a.cada, "init-model", "--config", f"{w}/arch_padded.json", "--tokenizer", f"{w}/model", "--out", f"{w}/padded"])
    assert json.load(open(f"{w}/padded/config.json"))["vocab_size"] == 1000
    r = sh([a.cada, "train", "--config", f"{w}/grpo.json", f"model={w}/padded", f"output_dir={w}/PV", "train.steps=1"])
    assert "1000 (logits" in r.stderr and os.path.exists(f"{w}/PV/final/model.safetensors"), r.stderr[-800:]
    json.dump(dict(arch, vocab_size=10), open(f"{w}/arch_small.json", "w"))
    r = sh([a.cada, "init-model", "--config", f"{w}/arch_small.json", "--tokenizer", f"{w}/model", "--out", f"{w}/small"],
           check=False)
    assert r.returncode == 1 and "vocab_size must be an integer of at least the tokenizer's" in r.stderr, r.stderr
    print("memory plan:", p.stdout.strip().splitlines()[-1].strip(), "| peak RSS after step 1:",
          f"{rows[0]['memory/peak_allocated_gib']:.2f} GiB")


def check_lora_resume(a, w, cfg):
    """GRPO with LoRA (reference = adapters off) and activation checkpointing: checkpoints are
    adapter folders, and a run killed mid-checkpoint resumes to the straight run's adapters bitwise."""
    lcfg = dict(cfg, output_dir=f"{w}/LA", lora={"r": 4, "alpha": 8, "dropout": 0.1, "seed": 1},
                gradient_checkpointing=True)
    open(f"{w}/lora.json", "w").write(json.dumps(lcfg, indent=1))
    p = sh([a.cada, "train", "--config", f"{w}/lora.json"])
    assert "LoRA r=4" in p.stderr, p.stderr[-800:]
    env = dict(os.environ, CADA_TEST_KILL_IN_CHECKPOINT="4")
    p = sh([a.cada, "train", "--config", f"{w}/lora.json", f"output_dir={w}/LB"], env=env, check=False)
    assert p.returncode == -signal.SIGKILL, f"expected SIGKILL, got {p.returncode}: {p.stderr[-500:]}"
    sh([a.cada, "train", "--config", f"{w}/lora.json", f"output_dir={w}/LB", "--resume"])
    for run in ("LA", "LB"):
        ck = f"{w}/{run}/checkpoint-4"
        assert os.path.exists(f"{ck}/adapter_model.safetensors") and not os.path.exists(f"{ck}/model.safetensors"), \
            f"a LoRA checkpoint holds the adapters only: {os.listdir(ck)}"
    ta = load_file(f"{w}/LA/checkpoint-4/adapter_model.safetensors")
    tb = load_file(f"{w}/LB/checkpoint-4/adapter_model.safetensors")
    assert ta.keys() == tb.keys() and all(k.startswith("base_model.model.model.layers.") for k in ta), list(ta)[:3]
    diff = [k for k in ta if not (ta[k] == tb[k]).all()]
    assert not diff, f"resumed LoRA adapters differ from the straight run: {diff[:3]}"
    assert any((v != 0).any() for k, v in ta.items() if "lora_B" in k), "the adapters did not train"
    # The final policy is the adapter folder of the last step (not the bare base).
    tf = load_file(f"{w}/LA/final/adapter_model.safetensors")
    assert tf.keys() == ta.keys() and all((tf[k] == ta[k]).all() for k in ta), "final/ differs from checkpoint-4"
    # cada info describes an adapter folder: the adapter, then the base it names.
    info = json.loads(sh([a.cada, "info", "--model", f"{w}/LA/final", "--json"]).stdout)
    n_adapter = sum(v.size for v in ta.values())
    assert info["adapter"]["r"] == 4 and info["adapter"]["parameters"] == n_adapter, info.get("adapter")
    assert info["parameters"] == json.loads(sh([a.cada, "info", "--model", f"{w}/model", "--json"]).stdout)["parameters"]
    text = sh([a.cada, "info", "--model", f"{w}/LA/final"]).stdout
    assert "adapter          LORA r=4" in text and f"base             {w}/model" in text, text
    kl = [json.loads(l)["train/kl"] for l in open(f"{w}/LA/metrics.jsonl")]
    # The adapters start as the base (B = 0): the KL starts near 0 (two updates per round) and grows.
    assert 0 <= kl[0] < 1e-3 and kl[-1] > kl[0], f"KL to the adapters-off reference: {kl}"
    print("GRPO with LoRA + checkpointing: SIGKILL mid-checkpoint + --resume gives the straight run's adapters bitwise; "
          f"KL to the base {kl}")


if __name__ == "__main__":
    main()
