"""Side-by-side GRPO benchmark: cada vs TRL's GRPOTrainer in one run, on CPU.

Both train the same tiny random checkpoint (built by `cada init-model` from the tiny world,
sentencepiece tokenizer, chat template), on the same prompts, with the same group size G,
prompts per step, completion length, beta > 0 (reference model), learning rate and reward
(DAPO's soft overlong length reward in characters, computed identically on both sides). Each
runs in its own process; TRL, cada and cada without its CPU fast paths (plain prompt +
completion rows in the update, libtorch's GEMM) alternate `--repeats` times and the median run
of each is reported: seconds per step (mean over steps after the first), the peak resident
memory of each process, and the ratio.

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


def peak_rss_of(args, env=None):
    """Runs a command and returns its peak resident set size in MiB (via wait4)."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=None if env is None else {**os.environ, **env})
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
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of each side; the median is reported")
    ap.add_argument("--out", default="")
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
        def run_trl(r):
            rss, _ = peak_rss_of([sys.executable, __file__, "--trl-worker", "--model", f"{w}/model", "--prompts",
                                  f"{w}/prompts.jsonl", "--out-dir", f"{w}/trl{r}", "--result", f"{w}/trl.json",
                                  "--steps", str(a.steps), "--G", str(a.G), "--prompts-per-step",
                                  str(a.prompts_per_step), "--completion-len", str(a.completion_len), "--beta",
                                  str(a.beta), "--threads", str(a.threads)])
            t = json.load(open(f"{w}/trl.json"))
            return {"step": sum(t["step_s"][1:]) / max(1, len(t["step_s"]) - 1), "rss": rss, "len": t["mean_length"]}

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
        def run_cada(name, share, env):
            c = json.loads(json.dumps(cfg))
            c["output_dir"] = f"{w}/{name}"
            c["train"]["share_prompt_prefix"] = share
            json.dump(c, open(f"{w}/{name}.json", "w"))
            rss, _ = peak_rss_of([a.cada, "--log-level", "warn", "train", "--config", f"{w}/{name}.json"], env)
            ms = [json.loads(l) for l in open(f"{w}/{name}/metrics.jsonl")]
            mean = lambda k: sum(m[k] for m in ms[1:]) / max(1, len(ms) - 1)
            return {"step": mean("time/step_s"), "rss": rss,
                    "len": sum(m["train/completion_length"] for m in ms) / len(ms),
                    "stages": {k: mean(f"time/{k}_s") for k in ("generate", "reward", "ref_logprobs", "update")}}

        # The three runs alternate, repeats times, and each reports its median: the load of a shared
        # machine drifts over minutes, so back-to-back blocks of one side would not be comparable.
        runs = {"trl": [], "cada": [], "base": []}
        for r in range(a.repeats):
            runs["trl"].append(run_trl(r))
            runs["cada"].append(run_cada(f"cada{r}", True, None))
            # The same binary without its CPU fast paths in the update: one forward per prompt +
            # completion row and libtorch's own GEMM (MKL in the PyPI wheel).
            runs["base"].append(run_cada(f"base{r}", False, {"CADA_CPU_GEMM": "libtorch"}))
        pick = {k: sorted(v, key=lambda x: x["step"])[len(v) // 2] for k, v in runs.items()}
        trl, cada, base = pick["trl"], pick["cada"], pick["base"]
        trl_step, trl_rss = trl["step"], max(x["rss"] for x in runs["trl"])
        cada["rss"] = max(x["rss"] for x in runs["cada"])
        base["rss"] = max(x["rss"] for x in runs["base"])
    rows = [
        "| | TRL GRPOTrainer | cada | TRL / cada | cada without fast paths |",
        "|---|---|---|---|---|",
        f"| seconds per step | {trl_step:.3f} | {cada['step']:.3f} | {trl_step / cada['step']:.1f}x | {base['step']:.3f} |",
        f"| peak RSS (MiB) | {trl_rss:.0f} | {cada['rss']:.0f} | {trl_rss / cada['rss']:.1f}x | {base['rss']:.0f} |",
        f"| mean completion length (tokens) | {trl['len']:.1f} | {cada['len']:.1f} | | {base['len']:.1f} |",
    ]
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    head = (f"GRPO on CPU ({platform.machine()}, {a.threads} threads): tiny ~5M Llama from `cada init-model --preset tiny`, "
            f"G={a.G}, {a.prompts_per_step} prompts/step, max {a.completion_len} new tokens, beta={a.beta} (reference "
            f"model), loss dapo, fp32, {a.steps} steps (first excluded from the mean); median of {a.repeats} alternating "
            f"runs of each"
            + (f"; OPENBLAS_CORETYPE={coretype}." if coretype else "."))
    split = lambda r: ", ".join(f"{k} {v:.3f} s" for k, v in r["stages"].items())
    table = (head + "\n\n" + "\n".join(rows) + f"\n\ncada's step by stage (mean): {split(cada)}; without the fast "
             f"paths (`train.share_prompt_prefix: false`, `CADA_CPU_GEMM=libtorch`): {split(base)}.")
    print(table)
    if a.out:
        open(a.out, "w").write("# GRPO step time: cada vs TRL\n\nMeasured by `python tools/bench_grpo.py --cada "
                               "build/bin/cada`.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
