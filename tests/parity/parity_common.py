"""Shared helpers for the parity scripts: argument parsing, running the cada binary,
JSONL files, and a mismatch report."""

import argparse
import json
import os
import shutil
import subprocess
import sys


def parse_args(description, grad_check=False):
    """--cada and --workdir (recreated); with grad_check, also --grad-check: the model_grad_check
    binary, by default the one in cada's build folder's tests/."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--cada", required=True, help="path to the cada binary")
    p.add_argument("--workdir", required=True, help="scratch folder (recreated)")
    if grad_check:
        p.add_argument("--grad-check", default=None, help="model_grad_check binary (default: next to cada's tests)")
    args = p.parse_args()
    if grad_check and args.grad_check is None:
        args.grad_check = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.cada))), "tests",
                                       "model_grad_check")
    if os.path.isdir(args.workdir):
        shutil.rmtree(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)
    return args


def run_cada(cada, args, check=True):
    """Runs `cada ARGS`; returns the CompletedProcess (stdout/stderr as text)."""
    cmd = [cada] + [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8")
    if check and proc.returncode != 0:
        sys.stderr.write("command failed (%d): %s\n%s\n" % (proc.returncode, " ".join(cmd), proc.stderr))
        raise SystemExit(1)
    return proc


def render_chat(cada, model_dir, records, tag):
    """Renders chat records (each may set add_generation_prompt, tools, chat_template_kwargs) in
    one `cada tokenize --chat --errors record` run, where a conversation the template rejects gets
    {"error": ...} in its place. Returns (one output record per input record, or None when cada
    did not write them, the CompletedProcess)."""
    inp = os.path.join(model_dir, "in_%s.jsonl" % tag)
    out = os.path.join(model_dir, "out_%s.jsonl" % tag)
    write_jsonl(inp, records)
    proc = run_cada(cada, ["tokenize", "--model", model_dir, "--chat", "--input", inp, "--out", out,
                           "--errors", "record"], check=False)
    got = read_jsonl(out) if os.path.exists(out) else []
    return (got if len(got) == len(records) and proc.returncode in (0, 1) else None), proc


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Report:
    """Counts checks and keeps the first few mismatches of each kind."""

    def __init__(self, max_shown=5):
        self.max_shown = max_shown
        self.counts = {}  # kind -> [passed, total]
        self.failures = {}  # kind -> list of strings

    def check(self, kind, ok, detail=""):
        c = self.counts.setdefault(kind, [0, 0])
        c[1] += 1
        if ok:
            c[0] += 1
        else:
            shown = self.failures.setdefault(kind, [])
            if len(shown) < self.max_shown:
                shown.append(detail)
        return ok

    def finish(self):
        all_ok = True
        for kind, (passed, total) in self.counts.items():
            status = "ok" if passed == total else "MISMATCH"
            print("%-55s %5d/%-5d %s" % (kind, passed, total, status))
            if passed != total:
                all_ok = False
                for d in self.failures.get(kind, []):
                    print("    " + d.replace("\n", "\n    "))
        print("PASS" if all_ok else "FAIL")
        return 0 if all_ok else 1
