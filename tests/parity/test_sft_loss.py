"""Parity of `cada sft` with TRL's SFTTrainer on a fixed tiny checkpoint.

1. SFT loss: `cada sft --dry-run-loss` (loss and per-parameter gradient norms of the first
   optimizer step, no update) against TRL's own SFTTrainer on the same records
   (conversational prompt-completion, completion_only_loss=True; and completion_only_loss=False),
   computed with trainer.compute_loss on one batch holding every record: the mean over all
   completion tokens of the batch (transformers' num_items_in_batch). Loss within 1e-5, gradient
   norms within 1e-5 + 1e-4 relative. "messages" conversations (loss on the assistant turns
   only) are checked against the same computation with labels built in Python from
   apply_chat_template prefixes (TRL's assistant_only_loss needs {% generation %} markers that
   the cada template does not carry).
(The reward-model trainer has its own parity and e2e checks: tests/parity/test_reward_model.py,
tests/e2e/test_train_rm.py.)

The tiny checkpoint is a cada init-model + a few `cada pretrain` steps on the tiny world.
"""
import json
import math
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_common import Report, parse_args, read_jsonl, run_cada, write_jsonl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dry_run(cada, cmd, cfg_path, overrides):
    p = run_cada(cada, [cmd, "--config", cfg_path, "--dry-run-loss"] + overrides)
    return json.loads(p.stdout.strip().splitlines()[-1])


def grad_norms(model):
    out, total = {}, 0.0
    for name, p in model.named_parameters():
        if p.grad is not None:
            n = p.grad.detach().double().norm().item()
            out[name] = n
            total += n * n
    return out, math.sqrt(total)


def compare_grads(rep, kind, cada_out, hf_norms, hf_total):
    rep.check(kind + ": grad norm", abs(cada_out["grad_norm"] - hf_total) <= 1e-5 + 1e-4 * hf_total,
              "cada %.8f transformers %.8f" % (cada_out["grad_norm"], hf_total))
    for name, n in hf_norms.items():
        got = cada_out["grad_norms"].get(name)
        rep.check(kind + ": per-parameter grad norms", got is not None and abs(got - n) <= 1e-5 + 1e-4 * n,
                  "%s: cada %s transformers %.8f" % (name, got, n))


def trl_loss(model_dir, records, completion_only, workdir):
    """TRL's SFTTrainer loss and gradients on one batch holding every record."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                             "completion": [{"role": "assistant", "content": r["completion"]}]} for r in records])
    args = SFTConfig(output_dir=workdir, per_device_train_batch_size=len(records), max_length=1024,
                     completion_only_loss=completion_only, report_to="none", use_cpu=True, bf16=False, fp16=False,
                     dataloader_drop_last=False, seed=0)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    model.train()
    num_items = int((batch["labels"][..., 1:] != -100).sum())
    loss = trainer.compute_loss(model, batch, num_items_in_batch=torch.tensor(num_items))
    model.zero_grad()
    loss.backward()
    norms, total = grad_norms(model)
    return loss.item(), num_items, norms, total


def messages_reference(model_dir, convs):
    """Assistant-turn loss by hand: labels from apply_chat_template prefixes, transformers' loss
    with num_items_in_batch over the batch."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()

    def ids_of(msgs, gen):
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
        return tok(text, add_special_tokens=False).input_ids

    rows = []
    for msgs in convs:
        ids = ids_of(msgs, False)
        labels = [-100] * len(ids)
        for k, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            b = len(ids_of(msgs[:k], True)) if k else 0
            e = len(ids_of(msgs[:k + 1], False))
            for t in range(b, min(e, len(ids))):
                labels[t] = ids[t]
        rows.append((ids, labels))
    L = max(len(i) for i, _ in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    input_ids = torch.tensor([i + [pad] * (L - len(i)) for i, _ in rows])
    labels = torch.tensor([l + [-100] * (L - len(l)) for _, l in rows])
    attn = torch.tensor([[1] * len(i) + [0] * (L - len(i)) for i, _ in rows])
    num_items = int((labels[:, 1:] != -100).sum())
    out = model(input_ids=input_ids, attention_mask=attn, labels=labels, num_items_in_batch=torch.tensor(num_items))
    model.zero_grad()
    out.loss.backward()
    norms, total = grad_norms(model)
    return out.loss.item(), num_items, norms, total


def main():
    a = parse_args(__doc__.splitlines()[0])
    w = a.workdir
    rep = Report()
    torch.manual_seed(0)

    # ---- the fixed tiny checkpoint
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 512, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    run_cada(a.cada, ["init-model", "--config", f"{w}/arch.json", "--train-tokenizer",
                      f"{ROOT}/data/tiny-world/corpus.jsonl", "--vocab-size", "400", "--out", f"{w}/init", "--seed", "1"])
    docs = read_jsonl(f"{ROOT}/data/tiny-world/corpus.jsonl")[:300]
    write_jsonl(f"{w}/corpus.jsonl", [{"text": d["text"]} for d in docs])
    json.dump({"model": f"{w}/init", "corpus": f"{w}/corpus.jsonl", "output_dir": f"{w}/pt", "seq_len": 64,
               "batch_size": 8, "steps": 12, "eval_every": 0, "tensorboard": False,
               "optim": {"lr": 3e-3, "warmup_steps": 2}}, open(f"{w}/pt.json", "w"))
    run_cada(a.cada, ["pretrain", "--config", f"{w}/pt.json"])
    base = f"{w}/pt/final"

    # ---- SFT: prompt-completion records vs TRL
    prompts = read_jsonl(f"{ROOT}/data/tiny-world/prompts.jsonl")
    picked = [prompts[i] for i in (0, 5, 900, 1500, 2100, 2700)]
    pc = [{"prompt": r["prompt"], "completion": r["safe_response"]} for r in picked]
    write_jsonl(f"{w}/pc.jsonl", pc)
    json.dump({"model": base, "data": f"{w}/pc.jsonl", "output_dir": f"{w}/sft", "max_length": 1024,
               "tensorboard": False}, open(f"{w}/sft.json", "w"))
    for completion_only in (True, False):
        kind = "sft prompt-completion (completion_only_loss=%s)" % completion_only
        got = dry_run(a.cada, "sft", f"{w}/sft.json",
                      ["shuffle=false", f"batch_size={len(pc)}", "micro_batch_size=4",
                       f"completion_only_loss={'true' if completion_only else 'false'}"])
        loss, n, norms, total = trl_loss(base, pc, completion_only, f"{w}/trl")
        rep.check(kind + ": target tokens", got["tokens"] == n, "cada %s TRL %s" % (got["tokens"], n))
        rep.check(kind + ": loss within 1e-5", abs(got["loss"] - loss) <= 1e-5,
                  "cada %.8f TRL %.8f" % (got["loss"], loss))
        compare_grads(rep, kind, got, norms, total)
        print("%s: cada loss %.6f, TRL %.6f; grad norm %.6f vs %.6f; %d target tokens"
              % (kind, got["loss"], loss, got["grad_norm"], total, n))

    # ---- SFT: messages (assistant turns only) vs labels from apply_chat_template prefixes
    convs = []
    for i in range(0, 6, 2):
        r1, r2 = picked[i], picked[i + 1]
        convs.append([{"role": "system", "content": "You are a careful assistant."},
                      {"role": "user", "content": r1["prompt"]}, {"role": "assistant", "content": r1["safe_response"]},
                      {"role": "user", "content": r2["prompt"]}, {"role": "assistant", "content": r2["safe_response"]}])
    write_jsonl(f"{w}/msgs.jsonl", [{"messages": c} for c in convs])
    got = dry_run(a.cada, "sft", f"{w}/sft.json", [f"data={w}/msgs.jsonl", "shuffle=false", f"batch_size={len(convs)}"])
    loss, n, norms, total = messages_reference(base, convs)
    kind = "sft messages (assistant turns)"
    rep.check(kind + ": target tokens", got["tokens"] == n, "cada %s reference %s" % (got["tokens"], n))
    rep.check(kind + ": loss within 1e-5", abs(got["loss"] - loss) <= 1e-5, "cada %.8f reference %.8f" % (got["loss"], loss))
    compare_grads(rep, kind, got, norms, total)
    print("%s: cada loss %.6f, reference %.6f; %d target tokens" % (kind, got["loss"], loss, n))

    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
