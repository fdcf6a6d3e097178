"""`cada eval` on the public benchmark files in their published formats, end to end on a tiny model.

Reads ../shared/benchmarks beside the repository (StrongREJECT, XSTest, AdvBench, HarmBench CSVs
as published) natively, a few rows each, and checks that every dataset is reported, that the
truncation class and its policy appear in report.json, report.md and on the console, and that
truncated completions never count as compliance (their refusal value is null under `exclude`).
Exits 77 (skip) only when the folder is absent.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BENCH = os.path.normpath(os.path.join(ROOT, "..", "shared", "benchmarks"))


def sh(args):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        raise SystemExit(f"{' '.join(map(str, args))} failed with {p.returncode}")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cada", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    if not os.path.isdir(BENCH):
        print(f"skipped: {BENCH} is absent")
        sys.exit(77)
    w = a.workdir
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    sh([a.cada, "init-model", "--preset", "tiny", "--train-tokenizer", f"{ROOT}/data/tiny-world/corpus.jsonl",
        "--vocab-size", "512", "--out", f"{w}/model", "--seed", "1"])
    datasets = [
        {"name": "xstest", "path": "xstest_prompts.csv", "limit": 3},
        {"name": "strongreject", "path": "strongreject_small_dataset.csv", "limit": 2},
        {"name": "advbench", "path": "harmful_behaviors.csv", "limit": 2},
        {"name": "harmbench", "path": "harmbench_behaviors_text_val.csv", "limit": 2},
    ]
    cfg = {
        "model": f"{w}/model", "output_dir": f"{w}/out", "data_dir": BENCH, "datasets": datasets,
        "sampling": {"max_new_tokens": 6},
        "rewards": {"rewards": [
            {"name": "refusal", "type": "refusal", "method": "xstest"},
            {"name": "jailbroken", "type": "refusal", "method": "advbench", "as": "compliance"}]},
        "judges": {"refusal": "refusal", "asr": ["jailbroken"]},
        "metrics": {"bootstrap": 50},
    }
    with open(f"{w}/eval.json", "w") as f:
        json.dump(cfg, f)
    p = sh([a.cada, "eval", "--config", f"{w}/eval.json", "threads=1"])
    out = f"{w}/out"
    rep = json.load(open(f"{out}/report.json"))
    for d in datasets:
        assert d["name"] in rep["datasets"], (d["name"], list(rep["datasets"]))
    t = rep["truncation"]
    assert t["policy"] == "exclude", t
    assert t["completions"] == rep["completions"], t
    md = open(f"{out}/report.md").read()
    assert "policy `exclude`" in md, md[:800]
    assert "policy `exclude`" in p.stdout or "policy exclude" in (p.stdout + p.stderr), (p.stdout + p.stderr)[-800:]
    cut = 0
    for line in open(f"{out}/scores.jsonl"):
        r = json.loads(line)
        for c in r["completions"]:
            if c["truncated"]:
                cut += 1
                assert c["scores"]["refusal"] is None and c["scores"]["jailbroken"] is None, c
    assert cut == t["truncated"], (cut, t)
    print(f"cada eval on the public benchmark files: {len(datasets)} datasets read natively, "
          f"{t['truncated']} of {t['completions']} completions truncated, policy reported")


if __name__ == "__main__":
    main()
