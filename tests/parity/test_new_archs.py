"""Parity: Qwen3, Gemma and Gemma-2 in cada against transformers, on checkpoints this test creates.

Random tiny checkpoints: Qwen3 untied, Qwen3 tied with q/k/v/o bias and sliding-window layers
(window 8, shorter than the sequences), Gemma (head_dim independent of hidden/heads, GQA), and
Gemma-2 (alternating sliding / global layers with window 8, query_pre_attn_scalar unequal to
head_dim, attention and final soft-caps small enough to bite). For each:
  - `cada logprobs` in padded batches: per-token log-probs within 1e-4 of transformers (float32);
  - `cada generate` greedy, prompts of different lengths in left-padded batches: token-identical
    to transformers' generate, log-probs within 1e-4 (the static engine: the model's own step,
    not the fused Llama decoding step); `--engine continuous` is refused with a clear message;
  - `cada convert` (float32): transformers loads the folder and gives the same logits;
  - gradients of a log-likelihood loss (model_grad_check, the forward the trainers use) within
    1e-4 of transformers', relative to the largest gradient of each tensor.
"""
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, Gemma2Config, GemmaConfig, Qwen3Config

from parity_common import parse_args, read_jsonl, run_cada, write_jsonl

TOL = 1e-4
MAX_NEW = 20

CONFIGS = {
    "qwen3_untied": Qwen3Config(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, head_dim=16, vocab_size=160, tie_word_embeddings=False),
    "qwen3_tied_window": Qwen3Config(hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                                     num_attention_heads=4, num_key_value_heads=1, head_dim=16, vocab_size=150,
                                     tie_word_embeddings=True, attention_bias=True, use_sliding_window=True,
                                     sliding_window=8, max_window_layers=1),
    "gemma": GemmaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=24, vocab_size=170),
    "gemma2_window_softcap": Gemma2Config(hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                                          num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=180,
                                          sliding_window=8, query_pre_attn_scalar=24, attn_logit_softcapping=2.0,
                                          final_logit_softcapping=3.0),
}


def make_checkpoint(path, cfg, seed):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # larger than the default init so that mistakes show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(path)


def load_hf(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def check_logprobs(a, name, path, V, seed):
    g = torch.Generator().manual_seed(seed)
    records = []
    for n in range(6):  # prompts and completions of different lengths, longer than the window
        P = int(torch.randint(1, 24, (1,), generator=g))
        C = int(torch.randint(1, 16, (1,), generator=g))
        records.append({"id": f"r{n}", "prompt_ids": torch.randint(0, V, (P,), generator=g).tolist(),
                        "completion_ids": torch.randint(0, V, (C,), generator=g).tolist()})
    inp, out = os.path.join(a.workdir, name + ".lp.jsonl"), os.path.join(a.workdir, name + ".lp.out.jsonl")
    write_jsonl(inp, records)
    run_cada(a.cada, ["logprobs", "--model", path, "--input", inp, "--out", out, "--dtype", "float32",
                      "--batch-size", 3])
    got = read_jsonl(out)
    model = load_hf(path)
    worst = 0.0
    with torch.no_grad():
        for r, c in zip(records, got):
            ids = torch.tensor([r["prompt_ids"] + r["completion_ids"]])
            lp = torch.log_softmax(model(ids).logits[0].float(), -1)
            P = len(r["prompt_ids"])
            want = [lp[P - 1 + i, t].item() for i, t in enumerate(r["completion_ids"])]
            assert len(c["logprobs"]) == len(want)
            worst = max(worst, max(abs(x - y) for x, y in zip(c["logprobs"], want)))
    return worst


def hf_generate(model, prompts, eos):
    L = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), L, dtype=torch.long)
    mask = torch.zeros(len(prompts), L, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, L - len(p):] = torch.tensor(p)
        mask[i, L - len(p):] = 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                             eos_token_id=eos, pad_token_id=0, return_dict_in_generate=True, output_logits=True)
    seqs, logps = [], []
    for i in range(len(prompts)):
        toks, lps = [], []
        for t, tok in enumerate(out.sequences[i, L:].tolist()):
            toks.append(tok)
            lps.append(torch.log_softmax(out.logits[t][i].float(), -1)[tok].item())
            if eos is not None and tok == eos:
                break
        seqs.append(toks)
        logps.append(lps)
    return seqs, logps


def check_generate(a, name, path, V, seed):
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(1, V, (int(n),), generator=g).tolist() for n in (3, 11, 6, 14, 1)]
    model = load_hf(path)
    free, _ = hf_generate(model, prompts, None)
    eos = free[0][MAX_NEW // 2]  # some rows stop early, others run to MAX_NEW
    for f in ("config.json", "generation_config.json"):
        fp = os.path.join(path, f)
        if os.path.exists(fp):
            c = json.load(open(fp))
            c["eos_token_id"] = eos
            json.dump(c, open(fp, "w"))
    want, want_lp = hf_generate(load_hf(path), prompts, eos)
    inp, out = os.path.join(a.workdir, name + ".gen.jsonl"), os.path.join(a.workdir, name + ".gen.out.jsonl")
    write_jsonl(inp, [{"prompt_ids": p} for p in prompts])
    run_cada(a.cada, ["generate", "--model", path, "--input", inp, "--out", out, "--temperature", "0",
                      "--max-new-tokens", MAX_NEW, "--batch-size", 3, "--dtype", "float32"])
    problems, worst = [], 0.0
    for i, (w, wl, r) in enumerate(zip(want, want_lp, read_jsonl(out))):
        c = r["completions"][0]
        if c["ids"] != w:
            problems.append(f"prompt {i}: cada {c['ids']} != transformers {w}")
            continue
        worst = max(worst, max(abs(x - y) for x, y in zip(c["logprobs"], wl)))
    if worst > TOL:
        problems.append(f"generation log-probs differ by {worst:.2e}")
    # The continuous engine decodes plain Llama-family layers only: it must refuse, saying which to use.
    res = run_cada(a.cada, ["generate", "--model", path, "--input", inp, "--out", out + ".cont", "--temperature", "0",
                            "--max-new-tokens", 4, "--dtype", "float32", "--engine", "continuous"], check=False)
    if res.returncode == 0 or "--engine static" not in res.stderr:
        problems.append(f"--engine continuous was not refused clearly: rc {res.returncode}, {res.stderr.strip()}")
    return problems, sum(1 for w in want if w and w[-1] == eos)


def check_roundtrip(a, name, path, V):
    conv = os.path.join(a.workdir, name + "_cada")
    run_cada(a.cada, ["convert", "--model", path, "--out", conv, "--dtype", "float32"])
    ids = torch.randint(0, V, (2, 30), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = load_hf(path)(ids).logits
        got = load_hf(conv)(ids).logits
    return (want - got).abs().max().item()


def check_gradients(a, name, path, V, seed):
    g = torch.Generator().manual_seed(seed)
    records = [{"prompt_ids": torch.randint(0, V, (P,), generator=g).tolist(),
                "completion_ids": torch.randint(0, V, (C,), generator=g).tolist()} for P, C in ((5, 12), (13, 4))]
    inp = os.path.join(a.workdir, name + ".grad.json")
    out = os.path.join(a.workdir, name + "_grads")
    json.dump(records, open(inp, "w"))
    res = subprocess.run([a.grad_check, path, inp, out], capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"model_grad_check failed with {res.returncode}")
    got = load_file(os.path.join(out, "model.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.train()
    loss = 0.0
    for r in records:  # the loss model_grad_check computes: -sum of completion log-probs, averaged
        ids = torch.tensor([r["prompt_ids"] + r["completion_ids"]])
        lp = torch.log_softmax(model(ids).logits[0].float(), -1)
        P = len(r["prompt_ids"])
        loss = loss - sum(lp[P - 1 + i, t] for i, t in enumerate(r["completion_ids"])) / len(records)
    loss.backward()
    worst, where = 0.0, ""
    params = dict(model.named_parameters())
    for k, p in params.items():
        if k not in got:
            return float("inf"), f"no gradient for {k}"
        scale = max(p.grad.abs().max().item(), 1e-6)
        d = (p.grad - got[k]).abs().max().item() / scale
        if d > worst:
            worst, where = d, k
    extra = set(got) - set(params)
    if extra:
        return float("inf"), f"unexpected gradient {sorted(extra)[0]}"
    return worst, where


def main():
    a = parse_args(__doc__, grad_check=True)
    failures = []
    for i, (name, cfg) in enumerate(CONFIGS.items()):
        path = os.path.join(a.workdir, name)
        make_checkpoint(path, cfg, seed=200 + i)
        V = cfg.vocab_size
        lp = check_logprobs(a, name, path, V, seed=i)
        print(f"{name:24s} logprobs  max |cada - transformers| = {lp:.2e}  {'ok' if lp <= TOL else 'FAIL'}")
        if lp > TOL:
            failures.append(f"{name}: logprobs")
        rt = check_roundtrip(a, name, path, V)
        print(f"{name:24s} convert   max logit diff after transformers reload = {rt:.2e}  "
              f"{'ok' if rt <= 1e-5 else 'FAIL'}")
        if rt > 1e-5:
            failures.append(f"{name}: round trip")
        gd, where = check_gradients(a, name, path, V, seed=50 + i)
        print(f"{name:24s} gradients max relative diff = {gd:.2e} ({where})  {'ok' if gd <= TOL else 'FAIL'}")
        if gd > TOL:
            failures.append(f"{name}: gradients")
        problems, stopped = check_generate(a, name, path, V, seed=10 + i)
        print(f"{name:24s} generate  5 prompts, {stopped} stopped at EOS  {'ok' if not problems else 'FAIL'}")
        for p in problems:
            print("    " + p)
        if problems:
            failures.append(f"{name}: generate")
    if failures:
        print("FAILED:", failures)
        sys.exit(1)
    print("all new-architecture parity checks passed")


if __name__ == "__main__":
    main()
