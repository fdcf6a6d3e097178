"""Helpers shared by the end-to-end tests: arguments, running the binary, a tiny model."""
import argparse
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_args():
    """--cada BINARY --workdir DIR; the work folder is recreated empty."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--cada", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    return a


# Lines that only a raw libtorch / C++ runtime failure prints: no command may ever show them
# (errors are one sentence; CADA_DEBUG=1 keeps backtraces for developers).
BACKTRACE_MARKERS = ("Exception raised from", "frame #0", "terminate called", "Aborted (core dumped)")


def assert_no_backtrace(text, what):
    for marker in BACKTRACE_MARKERS:
        if marker in text:
            raise SystemExit(f"{what} printed a raw backtrace ({marker!r}):\n{text[-3000:]}")


def sh(args, check=True, env=None):
    """Runs a command (arguments of any type); on failure with check, prints its output and exits.
    Any output with a raw backtrace fails the test, whatever the exit code."""
    p = subprocess.run([str(x) for x in args], capture_output=True, text=True, env=env)
    assert_no_backtrace(p.stdout + p.stderr, " ".join(map(str, args)))
    if check and p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"{' '.join(map(str, args))} failed with {p.returncode}")
    return p


def tiny_model(cada, out, seed, vocab=512, arch=None):
    """A tiny model folder with a sentencepiece tokenizer trained on the tiny world's corpus:
    the tiny preset, or the architecture of `arch` (a config.json path)."""
    shape = ["--config", arch] if arch else ["--preset", "tiny"]
    sh([cada, "init-model", *shape, "--train-tokenizer", f"{ROOT}/data/tiny-world/corpus.jsonl",
        "--vocab-size", vocab, "--out", out, "--seed", seed])
    return out
