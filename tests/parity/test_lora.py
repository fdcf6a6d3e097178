"""Parity: LoRA adapters in cada against PEFT, on checkpoints and adapters this test creates.

For random base models made with transformers (Llama with GQA, Qwen2 with q/k/v biases) and
adapters made with PEFT (random A and B, so that they change the output; all-linear, a subset of
layers and modules, rsLoRA):
  - cada loads PEFT's adapter folder: log-probs (`cada logprobs --model ADAPTER`) within 1e-5 of
    PEFT's in float32;
  - gradients of the adapter weights (model_grad_check, the forward the trainers use, with and
    without activation checkpointing) equal PEFT's within 1e-5 relative;
  - `cada merge-adapter` writes a plain model whose transformers logits equal PEFT's
    base + adapter within 1e-5.
Then cada trains an adapter (`cada sft` with lora.r = 4, two steps) on a model `cada init-model`
wrote; PEFT loads cada's adapter folder unchanged (PeftModel.from_pretrained) and reproduces cada's
log-probs within 1e-5.
"""
import json
import os
import subprocess

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from parity_common import parse_args, read_jsonl, run_cada, write_jsonl

TOL = 1e-5
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

BASES = {
    "llama_gqa": LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                             num_key_value_heads=2, vocab_size=150, tie_word_embeddings=False),
    "qwen2_bias_tied": Qwen2Config(hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=140, tie_word_embeddings=True),
}
ADAPTERS = {
    "all_linear": dict(r=4, lora_alpha=8, target_modules="all-linear"),
    "qv_layer1_rslora": dict(r=6, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"],
                             layers_to_transform=[1], use_rslora=True),
}


def make_base(path, cfg, seed):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.save_pretrained(path)
    return model


def make_adapter(base, path, spec, seed):
    torch.manual_seed(seed)
    peft_model = get_peft_model(base, LoraConfig(init_lora_weights=False, task_type="CAUSAL_LM", **spec))
    peft_model.save_pretrained(path)
    return peft_model


def make_records(V, seed, n=5):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        P = int(torch.randint(1, 20, (1,), generator=g))
        C = int(torch.randint(1, 15, (1,), generator=g))
        out.append({"id": f"r{i}", "prompt_ids": torch.randint(0, V, (P,), generator=g).tolist(),
                    "completion_ids": torch.randint(0, V, (C,), generator=g).tolist()})
    return out


def peft_logprobs(model, records):
    out = []
    with torch.no_grad():
        for r in records:
            ids = torch.tensor([r["prompt_ids"] + r["completion_ids"]])
            lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            P = len(r["prompt_ids"])
            out.append([lp[P - 1 + i, t].item() for i, t in enumerate(r["completion_ids"])])
    return out


def cada_logprobs(a, model_dir, records, tag):
    inp, out = os.path.join(a.workdir, f"{tag}.in.jsonl"), os.path.join(a.workdir, f"{tag}.out.jsonl")
    write_jsonl(inp, records)
    run_cada(a.cada, ["logprobs", "--model", model_dir, "--input", inp, "--out", out, "--dtype", "float32"])
    return [r["logprobs"] for r in read_jsonl(out)]


def max_diff(xs, ys):
    return max(abs(x - y) for a_, b_ in zip(xs, ys) for x, y in zip(a_, b_))


def peft_gradients(peft_model, records):
    peft_model.train()
    peft_model.zero_grad()
    loss = 0.0
    for r in records:
        ids = torch.tensor([r["prompt_ids"] + r["completion_ids"]])
        lp = torch.log_softmax(peft_model(input_ids=ids).logits[0].float(), -1)
        P = len(r["prompt_ids"])
        loss = loss - sum(lp[P - 1 + i, t] for i, t in enumerate(r["completion_ids"])) / len(records)
    loss.backward()
    peft_model.eval()
    return {n.replace(".default", ""): p.grad.detach().clone() for n, p in peft_model.named_parameters()
            if p.requires_grad}


def cada_gradients(a, adapter_dir, records, tag, checkpointing):
    from safetensors.torch import load_file
    inp, out = os.path.join(a.workdir, f"{tag}.grad.json"), os.path.join(a.workdir, f"{tag}.grads")
    json.dump(records, open(inp, "w"))
    env = dict(os.environ, CADA_GRAD_CHECKPOINTING="1" if checkpointing else "0")
    res = subprocess.run([a.grad_check, adapter_dir, inp, out], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        print(res.stdout, res.stderr)
        raise SystemExit(f"model_grad_check failed with {res.returncode}")
    return load_file(os.path.join(out, "model.safetensors"))


def grad_diff(want, got):
    assert set(want) == set(got), f"gradient names differ: {sorted(set(want) ^ set(got))[:4]}"
    worst, where = 0.0, ""
    for n, g in want.items():
        d = (got[n] - g).abs().max().item() / max(g.abs().max().item(), 1e-8)
        if d > worst:
            worst, where = d, n
    return worst, where


def check_peft_adapters(a, failures):
    for i, (bname, cfg) in enumerate(BASES.items()):
        base_dir = os.path.join(a.workdir, bname)
        make_base(base_dir, cfg, seed=10 + i)
        for j, (aname, spec) in enumerate(ADAPTERS.items()):
            tag = f"{bname}.{aname}"
            adapter_dir = os.path.join(a.workdir, tag)
            base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
            peft_model = make_adapter(base, adapter_dir, spec, seed=20 + j)
            # PEFT records no base path when built from a model object: name it, as users would.
            ac = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
            ac["base_model_name_or_path"] = base_dir
            json.dump(ac, open(os.path.join(adapter_dir, "adapter_config.json"), "w"), indent=2)
            peft_model.eval()
            records = make_records(cfg.vocab_size, seed=30 + i * 7 + j)
            d = max_diff(peft_logprobs(peft_model, records), cada_logprobs(a, adapter_dir, records, tag))
            ok = d <= TOL
            print(f"{tag:34s} cada loads PEFT's adapter: max |log-prob diff| = {d:.2e}  {'ok' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{tag}: log-probs")
            want = peft_gradients(peft_model, records)
            for ckpt in (False, True):
                g, where = grad_diff(want, cada_gradients(a, adapter_dir, records, f"{tag}.{ckpt}", ckpt))
                ok = g <= TOL
                print(f"{tag:34s} adapter gradients{' (checkpointed)' if ckpt else ''}: max relative diff = "
                      f"{g:.2e} ({where})  {'ok' if ok else 'FAIL'}")
                if not ok:
                    failures.append(f"{tag}: gradients checkpointing={ckpt}")
            merged_dir = adapter_dir + ".merged"
            run_cada(a.cada, ["merge-adapter", "--adapter", adapter_dir, "--out", merged_dir, "--dtype", "float32"])
            merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
            ids = torch.tensor([records[0]["prompt_ids"] + records[0]["completion_ids"]])
            with torch.no_grad():
                d = (merged(input_ids=ids).logits - peft_model(input_ids=ids).logits).abs().max().item()
            ok = d <= TOL
            print(f"{tag:34s} merged model vs base + adapter: max |logit diff| = {d:.2e}  {'ok' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{tag}: merge")


def check_cada_adapter(a, failures):
    w = os.path.join(a.workdir, "trained")
    os.makedirs(w)
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    run_cada(a.cada, ["init-model", "--config", f"{w}/arch.json", "--train-tokenizer",
                      f"{ROOT}/data/tiny-world/corpus.jsonl", "--vocab-size", "400", "--out", f"{w}/base", "--seed", "2"])
    docs = [json.loads(l)["text"] for l in open(f"{ROOT}/data/tiny-world/corpus.jsonl")][:40]
    write_jsonl(f"{w}/data.jsonl", [{"text": t} for t in docs])
    cfg = {"model": f"{w}/base", "data": f"{w}/data.jsonl", "output_dir": f"{w}/run", "steps": 2, "batch_size": 4,
           "max_length": 64, "eval_every": 0, "tensorboard": False, "optim": {"lr": 0.05},
           "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "gate_proj"], "seed": 5},
           "gradient_checkpointing": True}
    json.dump(cfg, open(f"{w}/sft.json", "w"))
    run_cada(a.cada, ["sft", "--config", f"{w}/sft.json"])
    adapter = f"{w}/run/final"
    assert os.path.exists(f"{adapter}/adapter_model.safetensors"), "cada sft with lora wrote no adapter folder"
    base = AutoModelForCausalLM.from_pretrained(f"{w}/base", dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, adapter).eval()
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().max().item() > 0 for p in lora_b), "the trained adapter's B matrices are all zero"
    records = make_records(400, seed=99)
    d = max_diff(peft_logprobs(peft_model, records), cada_logprobs(a, adapter, records, "trained"))
    ok = d <= TOL
    print(f"{'cada sft adapter':34s} PEFT loads cada's adapter: max |log-prob diff| = {d:.2e}  {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append("cada-trained adapter: log-probs under PEFT")


def main():
    a = parse_args(__doc__, grad_check=True)
    failures = []
    check_peft_adapters(a, failures)
    check_cada_adapter(a, failures)
    if failures:
        raise SystemExit("FAILED: " + "; ".join(failures))
    print("LoRA parity with PEFT: all checks passed")


if __name__ == "__main__":
    main()
