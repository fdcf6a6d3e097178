"""Side-by-side GRPO benchmark: cada vs TRL's GRPOTrainer in one run, on CPU.

Both train the same tiny random checkpoint (built by `cada init-model` from the tiny world,
sentencepiece tokenizer, chat template), on the same prompts, with the same group size G,
prompts per step, completion length, beta > 0 (reference model), learning rate and reward
(DAPO's soft overlong length reward in characters, computed identically on both sides). Each runs in its own process; the
table gives seconds per step (mean over steps after the first) and the peak resident memory
of each process, and the ratio.

    python tools/bench_grpo.py --cada build/bin/cada [--steps 6] [--out docs/benchmarks/grpo_cpu.md]
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


MAX_LEN, CACHE = 60, 30


def length_reward(text):
    # cada's `length` reward (DAPO soft overlong punishment) in characters, the same formula on both sides.
    n = len(text)
    if n <= MAX_LEN - CACHE:
        return 0.0
    if n <= MAX_LEN:
        return ((MAX_LEN - CACHE) - n) / CACHE
    return -1.0


def trl_worker(a):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(a.threads)
    prompts = [json.loads(l)["prompt"] for l in open(a.prompts)]
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in prompts])
    tok = AutoTokenizer.from_pretrained(a.model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)

    def reward(completions, **kw):
        return [length_reward(c[0]["content"] if isinstance(c, list) else c) for c in completions]

    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    cfg = GRPOConfig(output_dir=a.out_dir, per_device_train_batch_size=a.prompts_per_step * a.G,
                     num_generations=a.G, max_completion_length=a.completion_len, beta=a.beta,
                     learning_rate=1e-5, max_steps=a.steps, logging_steps=1, report_to=[], use_cpu=True,
                     bf16=False, save_strategy="no", gradient_accumulation_steps=1, loss_type="dapo",
                     temperature=1.0, seed=0, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=ds, processing_class=tok,
                          callbacks=[Timer()])
    trainer.train()
    lens = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    json.dump({"step_s": times, "mean_length": sum(lens) / max(1, len(lens))}, open(a.result, "w"))


def peak_rss_of(args):
    """Runs a command and returns its peak resident set size in MiB (via wait4)."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        print(out[-3000:])
        raise SystemExit(f"{' '.join(args[:3])} failed")
    return ru.ru_maxrss / 1024.0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cada")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--completion-len", type=int, default=32)
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default="")
    ap.add_argument("--share-prompt-prefix", choices=["true", "false"],
                    help="cada's train.share_prompt_prefix (default: cada's default, true)")
    ap.add_argument("--trl-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--prompts", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.trl_worker:
        return trl_worker(a)
    with tempfile.TemporaryDirectory() as w:
        subprocess.run([a.cada, "--log-level", "warn", "init-model", "--preset", "tiny", "--train-tokenizer",
                        f"{ROOT}/data/tiny-world/corpus.jsonl", "--vocab-size", "2048", "--out", f"{w}/model",
                        "--seed", "1"], check=True)
        recs = [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/prompts.jsonl")][:64]
        with open(f"{w}/prompts.jsonl", "w") as f:
            for r in recs:
                f.write(json.dumps({"prompt": r["prompt"], "label": r["label"]}) + "\n")
        # TRL
        trl_rss, _ = peak_rss_of([sys.executable, __file__, "--trl-worker", "--model", f"{w}/model", "--prompts",
                                  f"{w}/prompts.jsonl", "--out-dir", f"{w}/trl", "--result", f"{w}/trl.json",
                                  "--steps", str(a.steps), "--G", str(a.G), "--prompts-per-step",
                                  str(a.prompts_per_step), "--completion-len", str(a.completion_len), "--beta",
                                  str(a.beta), "--threads", str(a.threads)])
        trl = json.load(open(f"{w}/trl.json"))
        trl_step = sum(trl["step_s"][1:]) / max(1, len(trl["step_s"]) - 1)
        # cada: the same reward as a cada reward config (length reward with the same formula)
        cfg = {"model": f"{w}/model", "output_dir": f"{w}/cada",
               "rewards": {"rewards": [{"name": "len", "type": "length", "max_len": MAX_LEN, "cache": CACHE,
                                        "unit": "characters"}]},
               "data": {"train": f"{w}/prompts.jsonl"},
               "rollout": {"num_generations": a.G, "max_completion_length": a.completion_len},
               "loss": {"beta": a.beta, "loss_type": "dapo"}, "optim": {"lr": 1e-5},
               "train": {"steps": a.steps, "prompts_per_step": a.prompts_per_step,
                         "micro_batch_size": a.prompts_per_step * a.G, "threads": a.threads},
               "log": {"tensorboard": False}}
        if a.share_prompt_prefix is not None:
            cfg["train"]["share_prompt_prefix"] = a.share_prompt_prefix == "true"
        json.dump(cfg, open(f"{w}/cada.json", "w"))
        cada_rss, _ = peak_rss_of([a.cada, "--log-level", "warn", "train", "--config", f"{w}/cada.json"])
        ms = [json.loads(l) for l in open(f"{w}/cada/metrics.jsonl")]
        cada_step = sum(m["time/step_s"] for m in ms[1:]) / max(1, len(ms) - 1)
        cada_len = sum(m["train/completion_length"] for m in ms) / len(ms)
        stages = {k: sum(m[f"time/{k}_s"] for m in ms[1:]) / max(1, len(ms) - 1)
                  for k in ("generate", "reward", "ref_logprobs", "update")}
    rows = [
        "| | TRL GRPOTrainer | cada | TRL / cada |",
        "|---|---|---|---|",
        f"| seconds per step | {trl_step:.3f} | {cada_step:.3f} | {trl_step / cada_step:.1f}x |",
        f"| peak RSS (MiB) | {trl_rss:.0f} | {cada_rss:.0f} | {trl_rss / cada_rss:.1f}x |",
        f"| mean completion length (tokens) | {trl['mean_length']:.1f} | {cada_len:.1f} | |",
    ]
    head = (f"GRPO on CPU ({platform.machine()}, {a.threads} threads): tiny ~5M Llama from `cada init-model --preset tiny`, "
            f"G={a.G}, {a.prompts_per_step} prompts/step, max {a.completion_len} new tokens, beta={a.beta} (reference "
            f"model), loss dapo, fp32, {a.steps} steps (first excluded from the mean).")
    split = ", ".join(f"{k} {v:.3f} s" for k, v in stages.items())
    table = head + "\n\n" + "\n".join(rows) + f"\n\ncada's step by stage (mean): {split}."
    if a.share_prompt_prefix is not None:
        table += f" `train.share_prompt_prefix` = {a.share_prompt_prefix}."
    print(table)
    if a.out:
        open(a.out, "w").write("# GRPO step time: cada vs TRL\n\nMeasured by `python tools/bench_grpo.py --cada "
                               "build/bin/cada`.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
