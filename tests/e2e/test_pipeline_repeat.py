"""Reproducibility of the whole pipeline: two runs of scripts/pipeline.sh with the same seeds on
the same machine, at the smallest size that passes through every stage (--smoke: pre-training,
reward model, generate-chains, SFT, GRPO, three evals, report), give byte-identical models,
chains and reports. The two runs go at the same time, so each also runs while the machine is
loaded by the other, as CI's parallel tests load it."""
import hashlib
import os
import subprocess
import sys

from e2e_common import ROOT, parse_args

# What a run writes that must repeat byte for byte (paths under the run folder).
OUTPUTS = ["base/final/model.safetensors", "rm/final/model.safetensors", "chains/chains.jsonl",
           "sft/final/model.safetensors", "grpo/final/model.safetensors",
           "eval-base/report.json", "eval-sft/report.json", "eval-grpo/report.json", "report/compare.json"]


def digest(run, name):
    """The file's SHA-256, with the run folder's own path (reports name their inputs) made neutral."""
    with open(os.path.join(run, name), "rb") as f:
        data = f.read()
    return hashlib.sha256(data.replace(os.path.abspath(run).encode(), b"RUN").replace(run.encode(), b"RUN")).hexdigest()


def main():
    a = parse_args()
    env = dict(os.environ, CADA=os.path.abspath(a.cada), OMP_WAIT_POLICY="PASSIVE")
    runs = [os.path.join(a.workdir, f"run{i}") for i in (1, 2)]
    procs = [subprocess.Popen(["bash", os.path.join(ROOT, "scripts", "pipeline.sh"), "--smoke", "--run", r],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in runs]
    for r, p in zip(runs, procs):
        out, _ = p.communicate()
        assert p.returncode == 0, f"pipeline --smoke --run {r} failed ({p.returncode}):\n{out[-4000:]}"
    n_chains = sum(1 for _ in open(os.path.join(runs[0], "chains", "chains.jsonl")))
    assert n_chains > 0, "the smoke run kept no chains, so SFT saw no data"
    differ = [o for o in OUTPUTS if digest(runs[0], o) != digest(runs[1], o)]
    assert not differ, f"two runs with the same seeds differ in: {', '.join(differ)}"
    # The reports must also not be trivially equal: each eval scored real generations.
    for m in ("base", "sft", "grpo"):
        assert os.path.getsize(os.path.join(runs[0], f"eval-{m}", "generations.jsonl")) > 0, m
    print(f"two concurrent --smoke pipelines: {len(OUTPUTS)} outputs byte-identical ({n_chains} chains)")


if __name__ == "__main__":
    sys.exit(main())
