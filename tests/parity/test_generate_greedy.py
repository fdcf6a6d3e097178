"""Parity: greedy `cada generate` is token-identical to transformers' generate.

Random-weight Llama (GQA) and Qwen2 (q/k/v bias) checkpoints; prompts of different lengths in
one left-padded batch; an EOS id chosen so that some rows stop early and others run to
max_new_tokens. The per-token log-probs that cada returns must equal log_softmax of
transformers' step logits within 1e-4. Both schedulers of cada's generator are checked: static
batches and continuous batching (4 slots for 6 prompts, so finished rows' slots are refilled).

CADA_PARITY_DEVICE=cuda runs cada on the GPU (still float32); transformers stays on the CPU.
"""
import json
import os

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from parity_common import parse_args, read_jsonl, run_cada, write_jsonl

MAX_NEW = 24


def hf_generate(path, prompts, eos):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
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
        gen = out.sequences[i, L:].tolist()
        toks, lps = [], []
        for t, tok in enumerate(gen):
            toks.append(tok)
            lps.append(torch.log_softmax(out.logits[t][i].float(), -1)[tok].item())
            if eos is not None and tok == eos:
                break
        seqs.append(toks)
        logps.append(lps)
    return seqs, logps


def main():
    a = parse_args(__doc__)
    failures = 0
    configs = {
        "llama_gqa": LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, vocab_size=120),
        "qwen2_bias": Qwen2Config(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=1, vocab_size=120),
    }
    for ci, (name, cfg) in enumerate(configs.items()):
        torch.manual_seed(ci)
        model = AutoModelForCausalLM.from_config(cfg)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        path = os.path.join(a.workdir, name)
        model.save_pretrained(path)
        g = torch.Generator().manual_seed(10 + ci)
        prompts = [torch.randint(1, cfg.vocab_size, (int(n),), generator=g).tolist() for n in (3, 11, 6, 17, 1, 9)]
        # Pick an EOS that the first row produces midway, so rows stop at different steps.
        free, _ = hf_generate(path, prompts, None)
        eos = free[0][MAX_NEW // 2]
        for f in ("config.json", "generation_config.json"):
            fp = os.path.join(path, f)
            if os.path.exists(fp):
                c = json.load(open(fp))
                c["eos_token_id"] = eos
                json.dump(c, open(fp, "w"))
        want, want_lp = hf_generate(path, prompts, eos)
        inp = os.path.join(a.workdir, name + ".jsonl")
        write_jsonl(inp, [{"prompt_ids": p} for p in prompts])
        device = os.environ.get("CADA_PARITY_DEVICE", "cpu")
        for engine in ("static", "continuous"):
            out = os.path.join(a.workdir, f"{name}.{engine}.out.jsonl")
            run_cada(a.cada, ["generate", "--model", path, "--input", inp, "--out", out, "--temperature", "0",
                              "--max-new-tokens", MAX_NEW, "--batch-size", 4, "--dtype", "float32",
                              "--engine", engine, "--device", device])
            got = read_jsonl(out)
            stopped = sum(1 for w in want if w and w[-1] == eos)
            for i, (w, wl, r) in enumerate(zip(want, want_lp, got)):
                c = r["completions"][0]
                if c["ids"] != w:
                    failures += 1
                    print(f"{name} {engine} prompt {i}: cada {c['ids']} != transformers {w}")
                    continue
                reason = "stop" if w[-1] == eos else "length"
                if c["finish_reason"] != reason:
                    failures += 1
                    print(f"{name} {engine} prompt {i}: finish_reason {c['finish_reason']} != {reason}")
                worst = max(abs(x - y) for x, y in zip(c["logprobs"], wl))
                if worst > 1e-4:
                    failures += 1
                    print(f"{name} {engine} prompt {i}: log-prob max diff {worst:.2e}")
            print(f"{name} ({engine}, {device}): {len(prompts)} prompts (lengths {[len(p) for p in prompts]}), "
                  f"{stopped} stopped at EOS, {'ok' if not failures else 'FAIL'}")
    if failures:
        raise SystemExit(1)
    print("greedy generation is token-identical to transformers")


if __name__ == "__main__":
    main()
