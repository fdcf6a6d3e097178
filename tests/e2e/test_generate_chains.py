"""`cada generate-chains` end to end on a tiny random model: the stored prompts never contain the
specification (context distillation), the per-prompt filters, best-of-K, category caps, total cap
and harmful/benign mix hold on the written chains, and runs killed with SIGKILL at any moment
(between a prompt's samples and its progress line, in the middle of a line, after a progress
line, or from outside while it runs) resume with --resume to exactly the chains of an
uninterrupted run: no duplicate, no loss."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

K = 3
KEEP = 2
CAT_CAP = 3
TOTAL_CAP = 12
FRACTION = 0.5
HARMLESS_MIN = -0.7
HELPFUL_MIN = -0.9


def sh(args, env=None, check=True):
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"{' '.join(args)} failed with {p.returncode}")
    return p


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cada", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    # OpenMP threads that spin while waiting make a shared 2-core machine 40x slower.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    w = a.workdir
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    t0 = time.time()

    # A small random model with a tokenizer trained on the tiny world (1024 positions: the
    # specification takes several hundred tokens of a 512-piece vocabulary).
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 1024, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    sh([a.cada, "init-model", "--config", f"{w}/arch.json", "--train-tokenizer",
        f"{ROOT}/data/tiny-world/corpus.jsonl", "--vocab-size", "512", "--out", f"{w}/model", "--seed", "1"])

    # 20 train prompts: 10 harmful, 10 benign (borderline included), several per category.
    recs = [json.loads(l) for l in open(f"{ROOT}/data/tiny-world/prompts.jsonl")]
    rng = random.Random(7)
    harm = [r for r in recs if r["split"] == "train" and r["label"] == "harmful"]
    ben = [r for r in recs if r["split"] == "train" and r["label"] == "benign"]
    harm = [r for r in harm if r["category"] in ("violence_weapons", "self_harm")]
    chosen = rng.sample(harm, 10) + rng.sample(ben, 10)
    rng.shuffle(chosen)
    with open(f"{w}/prompts.jsonl", "w") as f:
        for r in chosen:
            f.write(json.dumps({k: r[k] for k in ("id", "split", "label", "kind", "category", "prompt")}) + "\n")
    originals = {r["id"]: r["prompt"] for r in chosen}

    cfg = {
        "model": f"{w}/model", "output_dir": f"{w}/A",
        "setting": "explicit", "spec": f"{ROOT}/data/specs/explicit.json",
        # A random model never closes </think> by itself: the prefix starts the structure and the
        # test does not require well-formed responses.
        "prompt": {"style": "think", "response_prefix": "<think>\n", "rules": "category"},
        "data": {"prompts": f"{w}/prompts.jsonl", "split": "train", "order": "shuffle", "seed": 3},
        "sampling": {"num_samples": K, "temperature": 1.0, "max_new_tokens": 10, "seed": 11},
        "rewards": {"rewards": [
            {"name": "short", "type": "length", "max_len": 40, "cache": 30, "unit": "characters"},
            {"name": "refusal", "type": "refusal", "method": "xstest"},
            {"name": "format", "type": "format", "style": "think"},
            {"name": "total", "type": "composite", "terms": [{"reward": "short", "weight": 1.0},
                                                             {"reward": "format", "weight": 0.2}]}]},
        "filter": {"require_format": False,
                   "harmless_reward": "short", "harmless_min": HARMLESS_MIN,
                   "helpful_reward": "short", "helpful_min": HELPFUL_MIN,
                   "best_of": "total", "keep_per_prompt": KEEP,
                   "per_category_cap": CAT_CAP, "total_cap": TOTAL_CAP, "harmful_fraction": FRACTION},
        "runtime": {"prompts_per_batch": 2, "threads": 2},
    }
    open(f"{w}/chains.json", "w").write("// generate-chains test config\n" + json.dumps(cfg, indent=1))
    run = [a.cada, "generate-chains", "--config", f"{w}/chains.json"]

    # ---- an uninterrupted run
    sh(run)
    chains_a = open(f"{w}/A/chains.jsonl").read()
    chains = [json.loads(l) for l in chains_a.splitlines()]
    samples = read_jsonl(f"{w}/A/samples.jsonl")
    summary = json.load(open(f"{w}/A/summary.json"))
    assert chains, f"no chains written: {summary}"
    print(f"uninterrupted: {len(chains)} chains from {summary['prompts_done']} prompts "
          f"({len(samples)} samples) in {time.time() - t0:.1f}s")

    # The specification is absent from every stored prompt: the messages are the original ones.
    spec = json.load(open(f"{ROOT}/data/specs/explicit.json"))
    fragments = ["## Objectives", "## Rules", "First think inside"] + spec["objectives"] + spec["defaults"]
    for cat in spec["categories"].values():
        fragments += [r["text"] for r in cat["rules"]] + [r["id"] + ":" for r in cat["rules"]]
    for c in chains:
        assert c["messages"] == [{"role": "user", "content": originals[c["prompt_id"]]}], c["messages"]
        assert c["prompt"] == originals[c["prompt_id"]]
        blob = json.dumps(c["messages"])
        for frag in fragments:
            assert frag not in blob, f"specification text {frag!r} leaked into the stored prompt of {c['id']}"
        assert c["completion"] == c["response"] and c["response"].startswith("<think>")
        assert c["format_version"] == 1 and c["setting"] == "explicit"
        assert c["spec_id"].startswith("tiny-explicit@fnv1a64:"), c["spec_id"]
        assert c["model"]["path"] == f"{w}/model" and c["model"]["fingerprint"].startswith("fnv1a64:")
        assert c["sampling"]["num_samples"] == K and c["sampling"]["seed"] == 11
        assert set(c["scores"]) == {"short", "refusal", "format", "total"}
    print("no specification text in any stored prompt; messages are the original prompts")

    # Filters and caps.
    for c in chains:
        if c["label"] == "harmful":
            assert c["scores"]["short"] >= HARMLESS_MIN, c
        else:
            assert c["scores"]["short"] >= HELPFUL_MIN, c
    per_prompt, per_cat = {}, {}
    for c in chains:
        per_prompt[c["prompt_id"]] = per_prompt.get(c["prompt_id"], 0) + 1
        per_cat[c["category"]] = per_cat.get(c["category"], 0) + 1
    assert max(per_prompt.values()) <= KEEP, per_prompt
    assert max(per_cat.values()) <= CAT_CAP, per_cat
    assert len(chains) <= TOTAL_CAP
    n_h = sum(c["label"] == "harmful" for c in chains)
    assert n_h == round(FRACTION * len(chains) + 1e-9) or abs(n_h - FRACTION * len(chains)) <= 0.5, (n_h, len(chains))
    # Best-of-K, recomputed here from samples.jsonl: the kept chains of a prompt are its top
    # KEEP passing samples by 'total' (ties by sample index), after dropping duplicates.
    by_prompt = {}
    for s in samples:
        by_prompt.setdefault(s["prompt_id"], []).append(s)
    for pid, ss in by_prompt.items():
        assert sorted(s["sample"] for s in ss) == list(range(K)), f"{pid}: samples {[s['sample'] for s in ss]}"
        thr, seen, ok = (HARMLESS_MIN if ss[0]["label"] == "harmful" else HELPFUL_MIN), set(), []
        for s in sorted(ss, key=lambda s: s["sample"]):
            if s["scores"]["short"] >= thr and s["response"] not in seen:
                seen.add(s["response"])
                ok.append(s)
        ok.sort(key=lambda s: (-s["scores"]["total"], s["sample"]))
        top = {s["sample"] for s in ok[:KEEP]}
        got = {c["sample_index"] for c in chains if c["prompt_id"] == pid}
        assert got <= top, f"{pid}: kept samples {got} are not among the best {top}"
    dropped = summary["per_prompt"]
    assert sum(dropped.values()) == len(samples), summary
    print(f"filters hold: per prompt <= {KEEP}, per category <= {CAT_CAP}, total {len(chains)} <= {TOTAL_CAP}, "
          f"{n_h} harmful; stage 1 {dropped}, stage 2 {summary['global']}")

    # ---- killed runs resume to exactly the same chains
    def resumed(tag, env):
        out = f"{w}/{tag}"
        p = sh(run + [f"output_dir={out}"], env=env, check=False)
        assert p.returncode == -signal.SIGKILL, f"{tag}: expected SIGKILL, got {p.returncode}: {p.stderr[-500:]}"
        assert not os.path.exists(f"{out}/chains.jsonl")
        sh(run + [f"output_dir={out}", "--resume"])
        got = open(f"{out}/chains.jsonl").read()
        assert got == chains_a, f"{tag}: resumed chains differ from the uninterrupted run"
        ids = [json.loads(l)["id"] for l in open(f"{out}/progress.jsonl")]
        assert len(ids) == len(set(ids)), f"{tag}: a prompt finished twice"
        ss = read_jsonl(f"{out}/samples.jsonl")
        keys = [(s["prompt_id"], s["sample"]) for s in ss]
        assert len(keys) == len(set(keys)) == K * len(ids), f"{tag}: duplicate or missing samples"
        return got

    for point in ("samples:3", "partial:2", "progress:4"):
        env = dict(os.environ, CADA_TEST_KILL_CHAINS=point)
        resumed("kill-" + point.replace(":", "-"), env)
        print(f"SIGKILL at {point} + --resume: identical chains")

    # Killed from outside once progress.jsonl shows finished prompts.
    out = f"{w}/polled"
    env = dict(os.environ, CADA_TEST_CHAINS_DELAY_MS="100")  # ~0.1 s per prompt: time to kill it mid-run
    p = subprocess.Popen(run + [f"output_dir={out}", "runtime.prompts_per_batch=1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env)
    killed = False
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        try:
            n = sum(1 for l in open(f"{out}/progress.jsonl") if l.endswith("\n"))
        except FileNotFoundError:
            n = 0
        if n >= 3:
            p.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    p.wait()
    if killed and p.returncode == -signal.SIGKILL:
        sh(run + [f"output_dir={out}", "--resume", "runtime.prompts_per_batch=1"])
        assert open(f"{out}/chains.jsonl").read() == chains_a, "externally killed run resumed to different chains"
        print("external SIGKILL mid-run + --resume (batching changed): identical chains")
    else:
        print(f"note: the run finished before it could be killed (rc {p.returncode}); external kill not exercised")

    # ---- guard rails
    p = sh(run, check=False)  # output_dir A already holds a run
    assert p.returncode == 1 and "pass --resume" in p.stderr, p.stderr
    p = sh(run + ["--resume", "sampling.seed=12"], check=False)
    assert p.returncode == 1 and "/config/sampling/seed" in p.stderr, p.stderr
    # Re-filtering a finished run: no generation, a smaller total cap.
    sh(run + ["--resume", "filter.total_cap=4"])
    refiltered = read_jsonl(f"{w}/A/chains.jsonl")
    a_by_id = {c["id"]: c for c in chains}
    assert 0 < len(refiltered) <= 4 and all(a_by_id.get(c["id"]) == c for c in refiltered), refiltered
    print("guard rails: existing run refused without --resume; changed sampling refused on --resume; re-filter ok")

    # ---- the cases and none settings
    for setting, spec_file in (("cases", f"{ROOT}/data/specs/cases.json"), ("none", "")):
        sh(run + [f"output_dir={w}/{setting}", f"setting={setting}", f"spec={spec_file}", "data.limit=6",
                  "filter.require_format=false", "filter.harmless_reward=", "filter.helpful_reward=",
                  "filter.total_cap=0", "filter.harmful_fraction=null"])
        cs = read_jsonl(f"{w}/{setting}/chains.jsonl")
        assert cs, setting
        for c in cs:
            assert c["messages"] == [{"role": "user", "content": originals[c["prompt_id"]]}]
            assert c["setting"] == setting
            if setting == "cases":
                cases = json.load(open(spec_file))["cases"]
                assert c["spec_cases"], c
                for cc in cases:
                    assert cc["request"] not in json.dumps(c["messages"]) or cc["request"] == c["prompt"]
            else:
                assert c["spec_id"] is None and c["spec_cases"] == []
        print(f"setting {setting}: {len(cs)} chains, original prompts only")
    print(f"done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
