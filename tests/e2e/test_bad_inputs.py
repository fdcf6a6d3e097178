"""Bad inputs and sizes a new user tries get one sentence within seconds, naming the file, line,
key or option, and exit 1: never a raw libtorch backtrace, an allocator failure, minutes of
compute or a silent acceptance. Each case reproduces a defect once found by trying the CLI."""
import json
import os
import shutil
import time

from e2e_common import ROOT, parse_args, sh, tiny_model

SECONDS = 30  # generous for a loaded 2-core machine; the point is "not minutes"


def variant(src, dst, **changes):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    c = json.load(open(f"{dst}/config.json"))
    c.update(changes)
    json.dump(c, open(f"{dst}/config.json", "w"))
    return dst


def main():
    a = parse_args()
    w = a.workdir
    cada = a.cada
    model = tiny_model(cada, f"{w}/model", seed=3)
    jl = lambda name, recs: (open(f"{w}/{name}", "w").write("".join(json.dumps(r) + "\n" for r in recs)), f"{w}/{name}")[1]
    prompts = jl("p.jsonl", [{"prompt": "hi"}])
    with open(f"{w}/big.jsonl", "w") as f:  # a 5 MB line: about a million tokens against 512 positions
        f.write(json.dumps({"prompt": "hello world " * 400000, "completion": "ok"}) + "\n")
    with open(f"{w}/corpus.jsonl", "w") as f:
        f.writelines(list(open(f"{ROOT}/data/tiny-world/corpus.jsonl"))[:100])
    pt = {"model": model, "corpus": f"{w}/corpus.jsonl", "seq_len": 32, "steps": 2, "batch_size": 4,
          "eval_every": 0, "tensorboard": False, "checkpoint": {"every": 1}}
    json.dump(pt, open(f"{w}/pt.json", "w"))
    with open(f"{w}/dup.json", "w") as f:
        f.write('{"model": "%s", "corpus": "%s", "steps": 2,\n "steps": 3}' % (model, f"{w}/corpus.jsonl"))
    grpo = {"model": model, "data": {"train": prompts},
            "rewards": {"rewards": [{"name": "len", "type": "length", "max_len": 40, "cache": 20, "unit": "characters"}]},
            "reward": "len"}
    json.dump(grpo, open(f"{w}/grpo.json", "w"))
    pretrain = [cada, "pretrain", "--config", f"{w}/pt.json"]
    # A finished run whose optimizer state went missing, for --resume.
    sh(pretrain + [f"output_dir={w}/run"])
    os.remove(f"{w}/run/checkpoint-2/optimizer.safetensors")
    shutil.rmtree(f"{w}/run/checkpoint-1", ignore_errors=True)

    cases = [
        ("generate --max-new-tokens 1e8",
         [cada, "generate", "--model", model, "--input", prompts, "--out", f"{w}/g.jsonl", "--max-new-tokens", 100000000],
         ["KV cache", "lower --max-new-tokens or --batch-size"]),
        ("generate --temperature inf",
         [cada, "generate", "--model", model, "--input", prompts, "--out", f"{w}/g.jsonl", "--temperature", "inf"],
         ["'temperature' must be a finite number"]),
        ("intermediate_size 1e12",
         [cada, "generate", "--model", variant(model, f"{w}/huge", intermediate_size=10**12), "--input", prompts,
          "--out", f"{w}/g.jsonl"], ["config.json", "intermediate_size 1000000000000"]),
        ("intermediate_size 1e9 (more than memory)",
         [cada, "generate", "--model", variant(model, f"{w}/big_model", intermediate_size=10**9), "--input", prompts,
          "--out", f"{w}/g.jsonl"], ["needs", "available", "intermediate_size"]),
        ("max_position_embeddings 0",
         [cada, "info", "--model", variant(model, f"{w}/m0", max_position_embeddings=0)],
         ["'max_position_embeddings' must be positive"]),
        ("eos_token_id outside the vocabulary",
         [cada, "info", "--model", variant(model, f"{w}/m1", eos_token_id=99999)], ["eos_token_id 99999"]),
        ("weights that do not fit config.json",
         [cada, "info", "--model", variant(model, f"{w}/m2", num_hidden_layers=8)], ["required by config.json are missing", "layers.6"]),
        ("a 5 MB JSONL line to logprobs",
         [cada, "logprobs", "--model", model, "--input", f"{w}/big.jsonl", "--out", f"{w}/lp.jsonl"],
         ["big.jsonl:1", "--max-length 512"]),
        ("prompt_ids of 2e12",
         [cada, "logprobs", "--model", model, "--input", jl("ids.jsonl", [{"prompt_ids": [2 * 10**12], "completion_ids": [1]}]),
          "--out", f"{w}/lp.jsonl"], ["ids.jsonl:1", "2000000000000"]),
        ("an unknown message role",
         [cada, "generate", "--model", model, "--input", jl("role.jsonl", [{"prompt": "x"}, {"messages": [{"role": "wizard", "content": "hi"}]}]),
          "--out", f"{w}/g.jsonl"], ["role.jsonl:2", "unknown role 'wizard'"]),
        ("tokenize --decode with ids outside the vocabulary",
         [cada, "tokenize", "--model", model, "--decode", "--text", "1 5000 -1 3"], ["token id 5000 is outside"]),
        ("tokenize: a record's add_special_tokens is not a boolean",
         [cada, "tokenize", "--model", model, "--input", jl("flag.jsonl", [{"text": "a"}, {"text": "b", "add_special_tokens": "yes"}])],
         ["flag.jsonl:2", "'add_special_tokens' must be true or false"]),
        ("optim.beta2=1.5", pretrain + [f"output_dir={w}/x", "optim.beta2=1.5"], ["'optim.beta2' must be in [0, 1), got 1.5"]),
        ("checkpoint.every=-1 and optim.warmup_steps=-3",
         pretrain + [f"output_dir={w}/x", "checkpoint.every=-1", "optim.warmup_steps=-3"],
         ["'checkpoint.every' must be >= 0", "'optim.warmup_steps' must be >= 0"]),
        ("optim.max_grad_norm=-1", pretrain + [f"output_dir={w}/x", "optim.max_grad_norm=-1"], ["'optim.max_grad_norm'"]),
        ("rollout.temperature=-1", [cada, "train", "--config", f"{w}/grpo.json", f"output_dir={w}/y", "rollout.temperature=-1"],
         ["'rollout.temperature' must be >= 0"]),
        ("rollout.max_completion_length=1e8",
         [cada, "train", "--config", f"{w}/grpo.json", f"output_dir={w}/z", "rollout.max_completion_length=100000000"],
         ["KV cache", "rollout.max_completion_length"]),
        ("duplicate JSON keys", [cada, "pretrain", "--config", f"{w}/dup.json", f"output_dir={w}/d"],
         ["dup.json", "key 'steps' appears twice"]),
        ("--resume without the optimizer state", pretrain + [f"output_dir={w}/run", "--resume", "steps=3"],
         ["optimizer.safetensors"]),
    ]
    for name, cmd, expect in cases:
        t = time.time()
        p = sh(cmd, check=False)  # sh fails the test on any raw backtrace
        secs = time.time() - t
        # The error: one sentence, or for configs one line per problem under it.
        err = p.stderr[p.stderr.find(f"cada {cmd[1]}: error:"):] if f"cada {cmd[1]}: error:" in p.stderr else ""
        assert p.returncode == 1, (name, p.returncode, p.stderr[-2000:])
        assert err, (name, p.stderr[-2000:])
        for e in expect:
            assert e in err, (name, e, err)
        last = " ".join(l.strip() for l in err.strip().splitlines())
        assert secs < SECONDS, (name, secs)
        print(f"{name}: exit 1 in {secs:.1f}s: {last[:220]}")
    print(f"{len(cases)} bad inputs: one sentence each, exit 1, no backtrace")


if __name__ == "__main__":
    main()
