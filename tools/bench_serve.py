"""Throughput of `cada serve` under concurrent load, side by side with `cada generate` on the same
prompts, in one run.

Both sides get the same model, the same prompts (one sample each, `--new-tokens` tokens, EOS
ignored, temperature 1 with fixed seeds) and the same threads. `cada generate` runs them as one
call of --batch-size rows and reports its generation time (loading excluded, after a warm-up);
`cada serve` gets them from C concurrent clients (each sends its next request when the previous
answer arrives), and the clock runs from the first request to the last answer, so HTTP, JSON,
tokenisation, queueing and batching are all counted. The table shows tokens/s of both, the ratio,
and the per-request latency (p50 / p95).

    python tools/bench_serve.py --cada build/bin/cada [--preset tiny|small] [--concurrency 1,8,32,64]
        [--requests 64] [--new-tokens 64] [--device cpu] [--out docs/benchmarks/serve_cpu.md]
    python tools/bench_serve.py --cada build/bin/cada --model MODEL_DIR --device cuda --dtype bfloat16 ...
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from serve_common import Served  # noqa: E402


def prompts(n):
    recs = [json.loads(l) for l in open(os.path.join(ROOT, "data", "tiny-world", "prompts.jsonl"))]
    return [recs[(i * 37) % len(recs)]["prompt"] for i in range(n)]


def generate_side(a, model, texts, work):
    inp, stats = os.path.join(work, "in.jsonl"), os.path.join(work, "stats.json")
    with open(inp, "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"prompt": t, "seed": i}) + "\n")
    subprocess.run([a.cada, "--log-level", "warn", "generate", "--model", model, "--input", inp, "--out",
                    os.path.join(work, "out.jsonl"), "--temperature", "1", "--ignore-eos", "--max-new-tokens",
                    str(a.new_tokens), "--batch-size", str(a.batch_rows), "--device", a.device, "--dtype", a.dtype,
                    "--threads", str(a.threads), "--stats", stats, "--warmup"], check=True)
    s = json.load(open(stats))
    return s["generated_tokens"] / (s["prefill_s"] + s["decode_s"])


def serve_side(srv, texts, concurrency, new_tokens):
    """Tokens/s over the whole load and the per-request latencies."""
    queue = list(enumerate(texts))
    lock = threading.Lock()
    latencies, tokens = [], [0]

    def client():
        while True:
            with lock:
                if not queue:
                    return
                i, text = queue.pop(0)
            body = {"model": "bench", "messages": [{"role": "user", "content": text}], "max_tokens": new_tokens,
                    "temperature": 1.0, "seed": i, "ignore_eos": True}
            t0 = time.perf_counter()
            req = urllib.request.Request(srv.url + "/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=600) as r:
                ans = json.loads(r.read())
            with lock:
                latencies.append(time.perf_counter() - t0)
                tokens[0] += ans["usage"]["completion_tokens"]

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return tokens[0] / wall, latencies


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cada", required=True)
    ap.add_argument("--model", default="", help="a model folder with a tokenizer (default: a random --preset model)")
    ap.add_argument("--preset", default="tiny", choices=["tiny", "small"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--concurrency", default="1,8,32,64")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch-rows", type=int, default=64, help="rows decoded together, on both sides")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cada_bench_serve_")
    model = a.model
    if not model:
        model = os.path.join(work, "bench")
        subprocess.run([a.cada, "--log-level", "warn", "init-model", "--preset", a.preset, "--train-tokenizer",
                        os.path.join(ROOT, "data", "tiny-world", "corpus.jsonl"), "--vocab-size", "2048", "--out",
                        model, "--seed", "0"], check=True)
    texts = prompts(a.requests)
    gen_tps = generate_side(a, model, texts, work)
    srv = Served(a.cada, model, work, name="bench", extra=["--served-model-name", "bench", "--device", a.device,
                                                           "--dtype", a.dtype, "--batch-rows", a.batch_rows,
                                                           "--threads", a.threads])
    rows = []
    try:
        serve_side(srv, texts[:4], 4, 4)  # warm-up: first-call allocations, thread pools
        for c in [int(x) for x in a.concurrency.split(",")]:
            tps, lat = serve_side(srv, texts, c, a.new_tokens)
            lat.sort()
            rows.append((c, tps, statistics.median(lat), lat[min(len(lat) - 1, int(0.95 * len(lat)))]))
            print(f"concurrency {c}: {tps:.0f} tok/s (generate {gen_tps:.0f}), p50 {rows[-1][2]:.2f} s", file=sys.stderr)
    finally:
        srv.stop()
    head = (f"`cada serve` vs `cada generate`: {a.requests} chat requests x {a.new_tokens} new tokens "
            f"(EOS ignored, temperature 1), model {a.model or a.preset + ' (random weights)'}, {a.device} {a.dtype}, "
            f"{a.threads} threads, {a.batch_rows} rows decoded together, {platform.processor() or platform.machine()}.\n\n")
    table = ("| clients | serve tok/s | generate tok/s | serve / generate | p50 latency (s) | p95 latency (s) |\n"
             "|---|---|---|---|---|---|\n")
    for c, tps, p50, p95 in rows:
        table += f"| {c} | {tps:.0f} | {gen_tps:.0f} | {tps / gen_tps:.2f} | {p50:.2f} | {p95:.2f} |\n"
    print(head + table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(head + table)


if __name__ == "__main__":
    main()
