"""Side-by-side generation benchmark: cada vs transformers' generate, in one run.

Both get the same random-weight checkpoints (about 5M and about 100M parameters, Llama
layout), the same prompts, batch size and number of new tokens (greedy, EOS ignored), and
the same number of CPU threads. Throughput counts generated tokens per second of generation
time (model loading excluded for both; each side first runs the same short untimed warm-up
generation: transformers in its process, cada with `generate --warmup`). Prints a Markdown table with the ratio and writes it
to --out when given.

    python tools/bench_generate.py --cada build/bin/cada [--device cpu] [--out docs/benchmarks/generate_cpu.md]

On a GPU, with realistic shapes (random weights; Qwen2.5-1.5B and Llama-3-8B dimensions) in
bfloat16, the table adds the weight-read limit of a decoding step, batch / (bytes of the
weights / memory bandwidth), and cada's share of it:

    python tools/bench_generate.py --cada build/bin/cada --device cuda --dtype bfloat16 \
        --sizes qwen1.5b,llama8b --batches 1,32,128,256 --prompt-len 128 --new-tokens 128 --repeats 1
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
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

SIZES = {
    "5M": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=2048, tie_word_embeddings=True),
    "100M": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, vocab_size=32000, tie_word_embeddings=True),
    # Qwen2.5-1.5B: q/k/v bias, tied embeddings, 151936-token vocabulary
    "qwen1.5b": dict(arch="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                     num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                     max_position_embeddings=4096),
    # Llama-3-8B: 128256-token vocabulary, untied head
    "llama8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False,
                    max_position_embeddings=4096),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_model(size, path, device, dtype):
    """A random-weight checkpoint of that shape saved at path; returns (model on device, parameters)."""
    kw = dict(SIZES[size])
    cfg = (Qwen2Config if kw.pop("arch", "llama") == "qwen2" else LlamaConfig)(**kw)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.save_pretrained(path)
    return model.eval(), sum(p.numel() for p in model.parameters())


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


def cada_tokens_per_s(cada, path, prompts, new_tokens, device, repeats, work, threads, dtype="float32", extra=()):
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
                        "--dtype", dtype, "--stats", stats, "--threads", str(threads), "--warmup", *extra],
                       check=True, capture_output=True)
        best = max(best, json.load(open(stats))["tokens_per_s"])
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cada", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=list(DTYPES))
    ap.add_argument("--sizes", default="5M,100M", help="model sizes to run: " + ", ".join(SIZES))
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--hbm-gbps", type=float, default=4800.0,
                    help="GPU memory bandwidth for the weight-read limit (H200: 4800, H100 SXM: 3350)")
    ap.add_argument("--cada-args", default="", help="extra arguments for `cada generate` (e.g. --no-cuda-graphs)")
    ap.add_argument("--jsonl", default="", help="append one JSON line per measured row here as it is measured")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gpu = a.device.startswith("cuda")
    dtype = DTYPES[a.dtype]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for size in a.sizes.split(","):
            if size not in SIZES:
                sys.exit(f"--sizes: unknown size '{size}' (expected one of {', '.join(SIZES)})")
            path = os.path.join(work, size)
            model, nparams = make_model(size, path, a.device, dtype)
            vocab = SIZES[size]["vocab_size"]
            for b in [int(x) for x in a.batches.split(",")]:
                g = torch.Generator().manual_seed(b)
                prompts = torch.randint(1, vocab, (b, a.prompt_len), generator=g).tolist()
                # Alternate the two sides, one run each per repeat, and keep each side's best: the load
                # of a shared machine drifts over minutes.
                hf = cd = 0.0
                for _ in range(a.repeats):
                    hf = max(hf, hf_tokens_per_s(model, prompts, a.new_tokens, a.device, 1))
                    cd = max(cd, cada_tokens_per_s(a.cada, path, prompts, a.new_tokens, a.device, 1, work, a.threads,
                                                   a.dtype, a.cada_args.split()))
                # Every decoding step reads every weight once: the bound no batch can beat.
                limit = b / (nparams * dtype.itemsize / (a.hbm_gbps * 1e9)) if gpu else None
                rows.append((size, nparams, b, hf, cd, limit))
                share = f"  {cd / limit:6.1%} of the weight-read limit {limit:9.0f}" if limit else ""
                print(f"{size:8s} batch {b:3d}: transformers {hf:9.1f} tok/s  cada {cd:9.1f} tok/s  "
                      f"ratio {cd / hf:5.2f}x{share}", flush=True)
                if a.jsonl:
                    with open(a.jsonl, "a") as f:
                        f.write(json.dumps({"size": size, "params": nparams, "batch": b, "dtype": a.dtype,
                                            "device": a.device, "prompt": a.prompt_len, "new": a.new_tokens,
                                            "hf_tok_s": hf, "cada_tok_s": cd, "limit_tok_s": limit}) + "\n")
            del model
            if gpu:
                torch.cuda.empty_cache()
    where = torch.cuda.get_device_name() if gpu else (platform.processor() or platform.machine())
    head = (f"Greedy generation, prompt {a.prompt_len} tokens, {a.new_tokens} new tokens, {a.dtype}, device {a.device}, "
            f"best of {a.repeats} alternating run(s) each; {where}; torch {torch.__version__}")
    if not gpu:
        head += f"; {a.threads} threads"
    if a.cada_args:
        head += f"; cada {a.cada_args}"
    if os.environ.get("OPENBLAS_CORETYPE"):
        head += f"; OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}"
    lines = [head + ".", ""]
    if gpu:
        lines += [f"Weight-read limit: batch / (bytes of the weights / {a.hbm_gbps:.0f} GB/s).", "",
                  "| model | parameters | batch | transformers tok/s | cada tok/s | cada / transformers | "
                  "weight-read limit tok/s | cada share of the limit |", "|---|---|---|---|---|---|---|---|"]
    else:
        lines += ["| model | parameters | batch | transformers tok/s | cada tok/s | cada / transformers |",
                  "|---|---|---|---|---|---|"]
    for size, n, b, hf, cd, limit in rows:
        line = f"| {size} | {n / 1e6:.1f}M | {b} | {hf:.1f} | {cd:.1f} | {cd / hf:.2f}x |"
        if limit:
            line += f" {limit:.0f} | {cd / limit:.1%} |"
        lines.append(line)
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write("# Generation throughput: cada vs transformers\n\nMeasured by `python tools/bench_generate.py "
                    f"--cada build/bin/cada --device {a.device} --dtype {a.dtype}`.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
