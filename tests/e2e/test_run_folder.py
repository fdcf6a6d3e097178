"""A trainer's output_dir belongs to one run (sft, pretrain, train-rm and train share the code):
a second run into a used folder is refused and leaves the old run intact, --overwrite replaces it,
--resume continues it (refused when the config's meaning changed), and a second process while one trains is refused at once with the lock
holder's pid named."""
import json
import os
import subprocess
import time

from e2e_common import ROOT, parse_args, sh, tiny_model


def listing(d):
    return sorted(os.listdir(d))


def main():
    a = parse_args()
    w = a.workdir
    tiny_model(a.cada, f"{w}/model", seed=2)
    with open(f"{w}/corpus.jsonl", "w") as f:
        for r in [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/corpus.jsonl")][:200]:
            f.write(json.dumps(r) + "\n")
    cfg = {"model": f"{w}/model", "corpus": f"{w}/corpus.jsonl", "output_dir": f"{w}/A", "seq_len": 32,
           "steps": 4, "batch_size": 4, "eval_every": 0, "checkpoint": {"every": 2, "keep_last": 5},
           "tensorboard": False}
    json.dump(cfg, open(f"{w}/pt.json", "w"))
    run = [a.cada, "pretrain", "--config", f"{w}/pt.json"]
    sh(run)
    before = listing(f"{w}/A")
    metrics = open(f"{w}/A/metrics.jsonl").read()
    assert "checkpoint-4" in before and "final" in before, before

    # 1. A second run into the used folder is refused, naming the ways on; nothing changes.
    p = sh(run + ["steps=2"], check=False)
    assert p.returncode == 1 and "already holds a run" in p.stderr and "--resume" in p.stderr \
        and "--overwrite" in p.stderr, p.stderr
    assert listing(f"{w}/A") == before and open(f"{w}/A/metrics.jsonl").read() == metrics
    print("refused:", p.stderr.strip().splitlines()[-1])

    # 2. --overwrite replaces the run: only the new run's checkpoints and metrics remain.
    sh(run + ["steps=2", "--overwrite"])
    after = listing(f"{w}/A")
    assert "checkpoint-4" not in after and "checkpoint-2" in after, after
    steps = [json.loads(l)["step"] for l in open(f"{w}/A/metrics.jsonl")]
    assert steps == [1, 2], steps
    print("--overwrite replaced the run:", after)

    # 3. --resume under a config that changes the run's meaning is refused, listing the keys;
    #    runtime keys (steps, checkpoint.*) may change, and --resume continues the run.
    p = sh(run + ["steps=4", "--resume", "optim.lr=0.5", "seed=9", "checkpoint.every=1"], check=False)
    assert p.returncode == 1 and "changes its meaning" in p.stderr and "optim.lr" in p.stderr \
        and "seed (" in p.stderr and "checkpoint.every" not in p.stderr and "steps" not in p.stderr, p.stderr
    print("resume under another config refused:", p.stderr.strip().splitlines()[-1][:200])
    sh(run + ["steps=4", "--resume"])
    steps = [json.loads(l)["step"] for l in open(f"{w}/A/metrics.jsonl")]
    assert steps == [1, 2, 3, 4], steps

    # 4. Two processes on one folder: the second is refused at once, naming the first's pid.
    slow = subprocess.Popen([str(x) for x in run + [f"output_dir={w}/B", "steps=400"]], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        lock = f"{w}/B/.lock"
        for _ in range(200):
            if os.path.exists(lock) and open(lock).read().strip():
                break
            time.sleep(0.05)
        t = time.time()
        p = sh(run + [f"output_dir={w}/B", "--resume"], check=False)
        assert p.returncode == 1 and f"pid {slow.pid}" in p.stderr, (slow.poll(), p.stderr)
        assert time.time() - t < 30
        print("second process refused:", p.stderr.strip().splitlines()[-1])
    finally:
        slow.kill()
        slow.wait()
    print("run folders: refused, overwritten, resumed and locked as promised")


if __name__ == "__main__":
    main()
