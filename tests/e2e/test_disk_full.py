"""A full disk while a trainer writes a checkpoint is one clear error and exit 1, never an abort;
the partial checkpoint is removed, the previous one stays intact, and --resume from it (after
moving the run to a disk with room) ends bitwise equal to an uninterrupted run. Shown for all
four trainers (pretrain, sft, train-rm, train) at several disk sizes, on a small tmpfs mounted
for the test (as root, or in a user namespace where one is allowed; otherwise the test is
skipped with exit code 77). The optimizer state is plain safetensors that other tools read."""
import json
import os
import shutil
import subprocess
import sys

from safetensors.numpy import load_file

from e2e_common import ROOT, parse_args, sh, tiny_model

BACKTRACE = ("terminate called", "Exception raised from", "frame #")


def mount_tmpfs(path, kib):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["umount", path], capture_output=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", path], capture_output=True, text=True)
    return p.returncode == 0


def in_namespace_or_skip():
    """Mounting needs root or a user namespace; re-runs this script in one when not root."""
    probe = "/tmp/cada-disk-full-probe"
    if mount_tmpfs(probe, 64):
        subprocess.run(["umount", probe])
        return
    if os.environ.get("CADA_DISK_FULL_NS"):
        print("SKIP: cannot mount a tmpfs here (no root, no user namespaces)")
        sys.exit(77)
    env = dict(os.environ, CADA_DISK_FULL_NS="1")
    p = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable, *sys.argv], env=env)
    sys.exit(p.returncode if p.returncode in (0, 77) else 1)


def same_weights(a, b):
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all((x[k] == y[k]).all() for k in x)


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    in_namespace_or_skip()
    a = parse_args()
    w = a.workdir
    # A small model keeps each checkpoint near 1 MB, so the disks are small and the runs quick.
    arch = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
            "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
            "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "vocab_size": 512}
    json.dump(arch, open(f"{w}/arch.json", "w"))
    tiny_model(a.cada, f"{w}/model", seed=6, arch=f"{w}/arch.json")
    with open(f"{w}/corpus.jsonl", "w") as f:
        f.writelines(list(open(f"{ROOT}/data/tiny-world/corpus.jsonl"))[:200])
    prefs = [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/preferences.jsonl")][:64]
    with open(f"{w}/pairs.jsonl", "w") as f:
        f.writelines(json.dumps({k: p[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for p in prefs)
    with open(f"{w}/sft.jsonl", "w") as f:
        f.writelines(json.dumps({"prompt": p["prompt"], "completion": p["chosen"]}) + "\n" for p in prefs)
    with open(f"{w}/prompts.jsonl", "w") as f:
        f.writelines(json.dumps({"prompt": p["prompt"]}) + "\n" for p in prefs[:16])
    ck = {"every": 1, "keep_last": 1}
    trainers = {
        "pretrain": {"model": f"{w}/model", "corpus": f"{w}/corpus.jsonl", "seq_len": 32, "steps": 4,
                     "batch_size": 4, "eval_every": 0, "tensorboard": False, "checkpoint": ck},
        "sft": {"model": f"{w}/model", "data": f"{w}/sft.jsonl", "max_length": 64, "steps": 4, "batch_size": 4,
                "eval_every": 0, "tensorboard": False, "checkpoint": ck},
        "train-rm": {"model": f"{w}/model", "data": f"{w}/pairs.jsonl", "max_length": 64, "steps": 4,
                     "batch_size": 4, "eval_every": 0, "tensorboard": False, "checkpoint": ck},
        "train": {"model": f"{w}/model", "data": {"train": f"{w}/prompts.jsonl"},
                  "rewards": {"rewards": [{"name": "len", "type": "length", "max_len": 40, "cache": 20, "unit": "characters"}]},
                  "reward": "len", "rollout": {"num_generations": 2, "max_completion_length": 8},
                  "loss": {"beta": 0.0}, "train": {"steps": 4, "prompts_per_step": 2, "micro_batch_size": 4, "seed": 5},
                  "checkpoint": ck, "log": {"tensorboard": False}},
    }
    disk = f"{w}/disk"
    cases = 0
    try:
        for cmd, cfg in trainers.items():
            path = f"{w}/{cmd}.json"
            json.dump(cfg, open(path, "w"))
            base = [a.cada, cmd, "--config", path]
            sh(base + [f"output_dir={w}/{cmd}-straight"])
            last = max((n for n in os.listdir(f"{w}/{cmd}-straight") if n.startswith("checkpoint-")),
                       key=lambda n: int(n.split("-")[1]))
            ckpt = du(f"{w}/{cmd}-straight/{last}")
            if cmd == "train":  # the optimizer state is plain safetensors, named by parameter
                moments = load_file(f"{w}/{cmd}-straight/{last}/optimizer.safetensors")
                assert "model.embed_tokens.weight.exp_avg" in moments, list(moments)[:4]
            # Disks that end the run in its first, second and third checkpoint (keep_last 1:
            # old and new coexist until the new one is complete).
            for frac in (0.3, 0.9, 1.3, 1.8):
                kib = int(ckpt * frac / 1024) + 64
                assert mount_tmpfs(disk, kib)
                out = f"{disk}/run"
                p = sh(base + [f"output_dir={out}"], check=False)
                cases += 1
                err = p.stderr.strip().splitlines()
                assert p.returncode == 1, (cmd, frac, p.returncode, p.stderr[-2000:])
                assert not any(b in p.stdout + p.stderr for b in BACKTRACE), p.stderr[-2000:]
                assert err[-1].startswith(f"cada {cmd}: error:") and "No space left on device" in err[-1], err[-1]
                left = sorted(os.listdir(out))
                assert not [n for n in left if ".tmp" in n], left
                kept = [n for n in left if n.startswith("checkpoint-")]
                print(f"{cmd} on a {kib} KiB disk: exit 1, {kept or 'no checkpoint'}: {err[-1][:160]}")
                if kept:  # the previous checkpoint resumes, bitwise
                    moved = f"{w}/{cmd}-moved"
                    shutil.rmtree(moved, ignore_errors=True)
                    shutil.copytree(out, moved)
                    sh(base + [f"output_dir={moved}", "--resume"])
                    assert same_weights(f"{w}/{cmd}-straight/final/model.safetensors",
                                        f"{moved}/final/model.safetensors"), cmd
                subprocess.run(["umount", disk])
    finally:
        subprocess.run(["umount", disk], capture_output=True)
    print(f"disk full: {cases} runs, each one error and exit 1; every kept checkpoint resumed bitwise")


if __name__ == "__main__":
    main()
