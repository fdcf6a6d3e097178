"""The tiny world's rulebook documents (tools/make_tiny_world.py) render the specifications in
exactly the layout of cada's prompt builder: for every rulebook document, the system turn equals
what `cada generate-chains --show-prompts` builds for the same record and setting. If the
generator and src/safety drift apart, the base model would learn a layout the pipeline never
shows it."""
import argparse
import json
import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cada", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    w = a.workdir
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    records = {}
    for line in open(os.path.join(ROOT, "data", "tiny-world", "prompts.jsonl")):
        r = json.loads(line)
        records[r["id"]] = r
    docs = [json.loads(l) for l in open(os.path.join(ROOT, "data", "tiny-world", "corpus.jsonl"))]
    rule = [d for d in docs if d["type"] == "rulebook"]
    stats = json.load(open(os.path.join(ROOT, "data", "tiny-world", "stats.json")))
    assert len(rule) == stats["corpus"]["rulebook"] and len(rule) > 500, (len(rule), stats["corpus"])
    checked = 0
    for setting in ("explicit", "cases"):
        mine = [d for d in rule if d["setting"] == setting]
        with open(f"{w}/{setting}.jsonl", "w") as f:
            for d in mine:
                f.write(json.dumps(records[d["ref"]]) + "\n")
        cfg = {"model": f"{w}/no-model", "setting": setting, "spec": os.path.join(ROOT, "data", "specs", f"{setting}.json"),
               "data": {"prompts": f"{w}/{setting}.jsonl", "split": "", "order": "file"},
               "prompt": {"rules": "category"},  # the layout the tiny world's documents were written in
               "rewards": {"rewards": [{"name": "f", "type": "format", "style": "think"}]}}
        json.dump(cfg, open(f"{w}/{setting}.json", "w"))
        p = subprocess.run([a.cada, "generate-chains", "--config", f"{w}/{setting}.json", "--show-prompts", str(len(mine))],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        shown = [b for b in p.stdout.split("=====\n") if b.strip()]
        assert len(shown) == len(mine), (len(shown), len(mine))
        for d, block in zip(mine, shown):
            system = re.match(r"\[system\]\n(.*)\n\[user\]\n", block, re.S).group(1)
            doc_system = re.match(r"<\|system\|>\n(.*?)<\|end\|>\n<\|user\|>\n", d["text"], re.S).group(1)
            assert system == doc_system, f"{d['ref']} ({setting}): corpus system turn differs from the prompt builder's\n" \
                                         f"--- builder\n{system}\n--- corpus\n{doc_system}"
            checked += 1
    print(f"{checked} rulebook documents: system turns identical to cada's prompt builder")


if __name__ == "__main__":
    main()
