"""Side-by-side generation benchmark: cada vs transformers' generate, in one run.

Both get the same random-weight checkpoints (about 5M and about 100M parameters, Llama
layout), the same prompts, batch size and number of new tokens (greedy, EOS ignored), and
the same number of CPU threads. Throughput counts generated tokens per second of generation
time (model loading excluded for both; each side first runs the same short untimed warm-up
generation: transformers in its process, cada with `generate --warmup`). Prints a Markdown table with the ratio and writes it
to --out when given.

    python tools/bench_generate.py --cada build/bin/cada [--device cpu] [--out docs/benchmarks/generate_cpu.md]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

SIZES = {
    "5M": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=2048, tie_word_embeddings=True),
    "100M": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, vocab_size=32000, tie_word_embeddings=True),
}


def hf_tokens_per_s(model, prompts, new_tokens, device, repeats):
    ids = torch.tensor(prompts, device=device)
    mask = torch.ones_like(ids)
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, eos_token_id=None,
              pad_token_id=0)
    with torch.inference_mode():
        model.generate(input_ids=ids[:, :8], attention_mask=mask[:, :8], max_new_tokens=4, do_sample=False,
                       pad_token_id=0)  # warm-up
        best = 0.0
        for _ in range(repeats):
            if device != "cpu":
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, **kw)
            if device != "cpu":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t
            assert out.shape[1] == ids.shape[1] + new_tokens
            best = max(best, ids.shape[0] * new_tokens / dt)
    return best


def cada_tokens_per_s(cada, path, prompts, new_tokens, device, repeats, work, threads):
    inp = os.path.join(work, "prompts.jsonl")
    with open(inp, "w") as f:
        for p in prompts:
            f.write(json.dumps({"prompt_ids": p}) + "\n")
    best = 0.0
    for _ in range(repeats):
        stats = os.path.join(work, "stats.json")
        subprocess.run([cada, "--log-level", "warn", "generate", "--model", path, "--input", inp,
                        "--out", os.path.join(work, "out.jsonl"), "--temperature", "0", "--ignore-eos",
                        "--max-new-tokens", str(new_tokens), "--batch-size", str(len(prompts)), "--device", device,
                        "--dtype", "float32", "--stats", stats, "--threads", str(threads), "--warmup"],
                       check=True, capture_output=True)
        best = max(best, json.load(open(stats))["tokens_per_s"])
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cada", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default=",".join(SIZES), help="model sizes to run: " + ", ".join(SIZES))
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for size in a.sizes.split(","):
            if size not in SIZES:
                sys.exit(f"--sizes: unknown size '{size}' (expected one of {', '.join(SIZES)})")
            kw = SIZES[size]
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(LlamaConfig(**kw))
            nparams = sum(p.numel() for p in model.parameters())
            path = os.path.join(work, size)
            model.save_pretrained(path)
            model = model.to(a.device).eval()
            for b in [int(x) for x in a.batches.split(",")]:
                g = torch.Generator().manual_seed(b)
                prompts = torch.randint(1, kw["vocab_size"], (b, a.prompt_len), generator=g).tolist()
                # Alternate the two sides, one run each per repeat, and keep each side's best: the load
                # of a shared machine drifts over minutes.
                hf = cd = 0.0
                for _ in range(a.repeats):
                    hf = max(hf, hf_tokens_per_s(model, prompts, a.new_tokens, a.device, 1))
                    cd = max(cd, cada_tokens_per_s(a.cada, path, prompts, a.new_tokens, a.device, 1, work, a.threads))
                rows.append((size, nparams, b, hf, cd))
                print(f"{size:5s} batch {b:3d}: transformers {hf:9.1f} tok/s  cada {cd:9.1f} tok/s  ratio {cd / hf:5.2f}x",
                      flush=True)
    lines = [f"Greedy generation, prompt {a.prompt_len} tokens, {a.new_tokens} new tokens, float32, device {a.device}, "
             f"{a.threads} threads, best of {a.repeats} alternating runs each; {platform.processor() or platform.machine()}; "
             f"torch {torch.__version__}"
             + (f"; OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}." if os.environ.get("OPENBLAS_CORETYPE") else "."), "",
             "| model | parameters | batch | transformers tok/s | cada tok/s | cada / transformers |",
             "|---|---|---|---|---|---|"]
    for size, n, b, hf, cd in rows:
        lines.append(f"| {size} | {n / 1e6:.1f}M | {b} | {hf:.1f} | {cd:.1f} | {cd / hf:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write("# Generation throughput: cada vs transformers\n\nMeasured by `python tools/bench_generate.py "
                    f"--cada build/bin/cada --device {a.device}`.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
