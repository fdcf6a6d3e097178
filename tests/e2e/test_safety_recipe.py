"""docs/safety.md's commands run: the specification previews in the repository, and the GPU
recipe block on the CPU with a tiny random policy and reward model and tiny budgets (the X_*
variables the document names), in a scratch copy of the layout whose data/external/ comes from
scripts/download_data.sh reading a local mirror of fixtures in the published formats."""
import json
import os
import re
import shutil
import subprocess

from e2e_common import ROOT, parse_args, sh, tiny_model
from test_public_data import write_mirror


def block(doc, tag):
    m = re.search(r"<!-- " + tag + r" -->\n```bash\n(.*?)```\n<!-- /" + tag + " -->", doc, re.S)
    assert m, f"docs/safety.md has no <!-- {tag} --> block"
    return m.group(1)


def run_block(text, cwd, env, what):
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-4000:], p.stderr[-4000:])
        raise SystemExit(f"{what} failed with {p.returncode}")
    return p


def main():
    a = parse_args()
    w = a.workdir
    cada = os.path.abspath(a.cada)
    doc = open(os.path.join(ROOT, "docs", "safety.md")).read()
    # The specification previews, in the repository (no model, shipped prompt files).
    env = dict(os.environ)
    specs = block(doc, "specs").replace("build/bin/cada", cada)
    p = run_block(specs, ROOT, env, "the specification previews")
    assert p.stdout.count("## Objectives") == 2 and "## Codes" in p.stdout, p.stdout[-2000:]

    # The recipe, in a scratch copy of the layout.
    root = os.path.join(w, "root")
    for d in ("scripts", "configs/gpu/cada", "data/specs", "build/bin"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(os.path.join(ROOT, "scripts", "download_data.sh"), os.path.join(root, "scripts"))
    for f in os.listdir(os.path.join(ROOT, "configs", "gpu", "cada")):
        shutil.copy(os.path.join(ROOT, "configs", "gpu", "cada", f), os.path.join(root, "configs", "gpu", "cada"))
    for f in os.listdir(os.path.join(ROOT, "data", "specs")):
        if f.endswith(".json"):
            shutil.copy(os.path.join(ROOT, "data", "specs", f), os.path.join(root, "data", "specs"))
    os.symlink(cada, os.path.join(root, "build", "bin", "cada"))
    write_mirror(os.path.join(w, "mirror"))
    policy = tiny_model(cada, os.path.join(w, "policy"), 1)
    cfg = json.load(open(os.path.join(policy, "config.json")))
    cfg.update(architectures=["LlamaForSequenceClassification"], num_labels=1, id2label={"0": "LABEL_0"},
               label2id={"LABEL_0": 0})
    with open(os.path.join(w, "rm_config.json"), "w") as f:
        json.dump(cfg, f)
    sh([cada, "init-model", "--config", os.path.join(w, "rm_config.json"), "--tokenizer", policy,
        "--out", os.path.join(w, "rm"), "--seed", 2])
    cpu = "device=cpu dtype=float32"
    env = dict(os.environ, CADA_DATA_MIRROR="file://" + os.path.join(w, "mirror"), M=policy,
               RM=os.path.join(w, "rm"), RUN=os.path.join(w, "run"), OMP_WAIT_POLICY="PASSIVE",
               X_CHAINS="data.limit=4 cases.k=1 sampling.num_samples=2 sampling.max_new_tokens=12 runtime.device=cpu "
                        "runtime.dtype=float32 runtime.prompts_per_batch=4 runtime.batch_rows=8 "
                        "filter.require_format=false filter.harmless_reward= filter.helpful_reward= "
                        "filter.harmful_fraction=null",
               X_SFT="epochs=1 batch_size=2 micro_batch_size=2 max_length=128 device=cpu bf16_autocast=false "
                     "eval_fraction=0 eval_every=0",
               X_GRPO="train.steps=1 train.prompts_per_step=2 train.micro_batch_size=2 train.device=cpu "
                      "train.bf16_autocast=false rollout.num_generations=2 rollout.max_completion_length=8 "
                      "rollout.batch_rows=4 log.tensorboard=false",
               X_EVAL=f"{cpu} batch_size=4 bon.n=1 sampling.max_new_tokens=8 datasets.0.limit=2 "
                      "datasets.1.limit=1 datasets.2.limit=1 datasets.3.limit=2 utility.limit=1 "
                      "utility.max_new_tokens=8 metrics.bootstrap=10 "
                      "utility.mmlu=[\"data/external/mmlu/data/test/high_school_mathematics_test.csv\"]")
    run_block(block(doc, "recipe"), root, env, "the GPU recipe on the tiny model")
    cmp = json.load(open(os.path.join(w, "run", "report", "compare.json")))
    rows = {(r["dataset"], r["metric"]) for r in cmp["rows"]}
    assert ("mmlu", "accuracy") in rows and ("xstest", "over_refusal") in rows, sorted(rows)
    print(f"docs/safety.md: specification previews and the recipe ran; compare has {len(rows)} rows")


if __name__ == "__main__":
    main()
