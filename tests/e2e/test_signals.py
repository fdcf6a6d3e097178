"""SIGTERM and SIGINT stop a trainer cleanly: the current step finishes, a checkpoint is written
after the signal, the process exits 143 (SIGTERM) or 130 (SIGINT) with one line naming the
checkpoint and --resume, and --resume ends bitwise equal to an uninterrupted run. A second
signal exits at once. Shown on `cada pretrain` and `cada train` (GRPO); sft and train-rm share
the code paths."""
import json
import os
import signal
import subprocess
import time

from safetensors.numpy import load_file

from e2e_common import ROOT, parse_args, sh, tiny_model


def lines(path):
    try:
        return [l for l in open(path) if l.endswith("\n")]
    except FileNotFoundError:
        return []


def signal_midway(cmd, out_dir, sig, after_steps, twice=False):
    """Starts cmd, sends sig once out_dir/metrics.jsonl has after_steps lines; returns (rc, stderr)."""
    p = subprocess.Popen([str(x) for x in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = time.time()
    while len(lines(f"{out_dir}/metrics.jsonl")) < after_steps:
        if p.poll() is not None:
            raise SystemExit(f"finished before the signal: {p.stderr.read()}")
        if time.time() - t > 120:
            p.kill()
            raise SystemExit("no progress")
        time.sleep(0.02)
    p.send_signal(sig)
    if twice:
        time.sleep(0.05)
        p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def same_weights(a, b):
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all((x[k] == y[k]).all() for k in x)


def main():
    a = parse_args()
    w = a.workdir
    tiny_model(a.cada, f"{w}/model", seed=4)

    # ---- pretrain: SIGTERM, then SIGINT on the resumed run, then resume to the end
    with open(f"{w}/corpus.jsonl", "w") as f:
        f.writelines(list(open(f"{ROOT}/data/tiny-world/corpus.jsonl"))[:400])
    pt = {"model": f"{w}/model", "corpus": f"{w}/corpus.jsonl", "seq_len": 64, "steps": 24,
          "batch_size": 8, "eval_every": 0, "tensorboard": False, "checkpoint": {"every": 0, "keep_last": 3}}
    json.dump(pt, open(f"{w}/pt.json", "w"))
    base = [a.cada, "pretrain", "--config", f"{w}/pt.json"]
    sh(base + [f"output_dir={w}/straight"])
    run = base + [f"output_dir={w}/stopped"]
    rc, err = signal_midway(run, f"{w}/stopped", signal.SIGTERM, 3)
    last = err.strip().splitlines()[-1]
    assert rc == 143 and "SIGTERM" in last and "--resume" in last, (rc, err)
    done = len(lines(f"{w}/stopped/metrics.jsonl"))
    assert os.path.isdir(f"{w}/stopped/checkpoint-{done}"), (done, os.listdir(f"{w}/stopped"))
    assert not os.path.exists(f"{w}/stopped/final")
    print(f"pretrain SIGTERM: exit 143 after step {done}, checkpoint-{done} written: {last}")
    rc, err = signal_midway(run + ["--resume"], f"{w}/stopped", signal.SIGINT, done + 3)
    assert rc == 130 and "SIGINT" in err, (rc, err)
    sh(run + ["--resume"])
    assert same_weights(f"{w}/straight/final/model.safetensors", f"{w}/stopped/final/model.safetensors")
    print("pretrain: SIGTERM + SIGINT + --resume end bitwise equal to the uninterrupted run")

    # ---- a second signal exits at once, without a checkpoint
    rc, err = signal_midway(base + [f"output_dir={w}/twice"], f"{w}/twice", signal.SIGTERM, 2, twice=True)
    assert rc == 143 and "second signal" in err, (rc, err)
    print("a second SIGTERM exits at once")

    # ---- GRPO
    prompts = [{"prompt": f"Question number {i}: what should I do?", "label": "benign"} for i in range(12)]
    with open(f"{w}/prompts.jsonl", "w") as f:
        f.write("".join(json.dumps(p) + "\n" for p in prompts))
    grpo = {"model": f"{w}/model", "data": {"train": f"{w}/prompts.jsonl"},
            "rewards": {"rewards": [{"name": "len", "type": "length", "max_len": 40, "cache": 20,
                                     "unit": "characters"}]},
            "reward": "len", "rollout": {"num_generations": 4, "max_completion_length": 16},
            "loss": {"beta": 0.0}, "train": {"steps": 6, "prompts_per_step": 2, "micro_batch_size": 8, "seed": 5},
            "checkpoint": {"every": 0, "keep_last": 3}, "log": {"tensorboard": False}}
    json.dump(grpo, open(f"{w}/grpo.json", "w"))
    base = [a.cada, "train", "--config", f"{w}/grpo.json"]
    sh(base + [f"output_dir={w}/g_straight"])
    run = base + [f"output_dir={w}/g_stopped"]
    rc, err = signal_midway(run, f"{w}/g_stopped", signal.SIGTERM, 2)
    done = len(lines(f"{w}/g_stopped/metrics.jsonl"))
    assert rc == 143 and os.path.isdir(f"{w}/g_stopped/checkpoint-{done}"), (rc, done, err)
    sh(run + ["--resume"])
    assert same_weights(f"{w}/g_straight/final/model.safetensors", f"{w}/g_stopped/final/model.safetensors")
    print(f"GRPO: SIGTERM after step {done} + --resume end bitwise equal to the uninterrupted run")


if __name__ == "__main__":
    main()
