"""Parity: `cada score` with `rm` rewards against transformers' *ForSequenceClassification.

For LlamaForSequenceClassification (num_labels 1, Llama-3 chat template) and
Qwen2ForSequenceClassification (num_labels 3, Qwen2 chat template; and num_labels 1, ChatML),
random weights are saved by transformers next to a byte-level BPE tokenizer trained here, and
(prompt, response) pairs are scored through the chat template (user turn + assistant turn):

  - by cada (`cada score`, float32, batches of 3 mixing lengths; generate-style and flat records);
  - by transformers in float32: each sequence alone (unpadded); one LEFT-padded batch with
    attention_mask and explicit position_ids = cumsum(mask) - 1; one RIGHT-padded batch with
    attention_mask. transformers pools at the last token that is not pad_token_id.

Every label, the label difference and the sigmoid / standard normalisations must agree within
1e-4. The difference of transformers' left-padded batch WITHOUT position_ids (positions shifted
by the pad amount; RoPE is relative, so only rounding changes) is printed for information.
"""

import json
import math
import os

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig, Qwen2Config

from parity_common import Report, parse_args, read_jsonl, run_cada, write_jsonl

TOL = 1e-4

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>",
           "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|pad|>"]

# name -> (config class, kwargs, num_labels, template, bos, eos)
MODELS = {
    "llama_rm1": (LlamaConfig, dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2, rope_theta=10000.0), 1, LLAMA3, "<|begin_of_text|>",
                  "<|eot_id|>"),
    "qwen2_rm3": (Qwen2Config, dict(hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=1, rope_theta=1000000.0), 3, QWEN2, None, "<|im_end|>"),
    "qwen2_rm1_chatml": (Qwen2Config, dict(hidden_size=48, intermediate_size=64, num_hidden_layers=3,
                                           num_attention_heads=6, num_key_value_heads=2), 1, CHATML, None,
                         "<|im_end|>"),
}

CONVS = [
    ([{"role": "user", "content": "How do I bake bread?"}], "Mix flour, water, salt and yeast; knead; rest; bake."),
    ([{"role": "user", "content": "Hi"}], "Hello!"),
    ([{"role": "system", "content": "You are careful."}, {"role": "user", "content": "How can I kill a Python process?"}],
     "Use `kill -9 <pid>` or, from Python, os.kill(pid, signal.SIGTERM). This is a normal admin task."),
    ([{"role": "user", "content": "Write detailed instructions for making a dangerous weapon at home."}],
     "I'm sorry, but I can't help with that."),
    ([{"role": "user", "content": "Ünïcödé test: 日本語 😀"}], "Sure — here are some characters: é, ß, Ω."),
    ([{"role": "user", "content": "A longer question with several clauses, commas, and numbers like 1234, "
                                  "to make this the longest sequence of the batch by a good margin, again and again."}],
     "A longer answer. " * 6),
    ([{"role": "user", "content": "q"}], "a"),
]


def build_tokenizer(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
                             behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(m["content"] for m in c) + " " + r for c, r in CONVS] * 20 + [
        "system user assistant You are a helpful assistant"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=500, special_tokens=SPECIAL,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    tok.save(path)
    return tok


def make_model(wd, name, spec, tokenizer_json, seed):
    cls, kw, num_labels, template, bos, eos = spec
    d = os.path.join(wd, name)
    os.makedirs(d, exist_ok=True)
    fast = Tokenizer.from_file(tokenizer_json)
    pad_id = fast.token_to_id("<|pad|>")
    torch.manual_seed(seed)
    cfg = cls(vocab_size=fast.get_vocab_size(), num_labels=num_labels, pad_token_id=pad_id, **kw)
    model = AutoModelForSequenceClassification.from_config(cfg)
    with torch.no_grad():  # larger than the default init so that mistakes show in the scores
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(d)
    with open(tokenizer_json, encoding="utf-8") as f:
        tj = f.read()
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tj)
    tcfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos, "pad_token": "<|pad|>",
            "chat_template": template}
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tcfg, f, ensure_ascii=False, indent=1)
    return d, num_labels


def hf_scores(d):
    """(unpadded, left-padded with positions, right-padded, left-padded WITHOUT positions) per conversation."""
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForSequenceClassification.from_pretrained(d, dtype=torch.float32)
    model.eval()
    pad = model.config.pad_token_id
    seqs = []
    for conv, resp in CONVS:
        text = tok.apply_chat_template(conv + [{"role": "assistant", "content": resp}], tokenize=False)
        ids = tok(text, add_special_tokens=False).input_ids
        assert ids[-1] != pad
        seqs.append(ids)
    L = max(len(s) for s in seqs)
    with torch.no_grad():
        alone = [model(torch.tensor([s])).logits[0] for s in seqs]
        left = torch.tensor([[pad] * (L - len(s)) + s for s in seqs])
        lmask = torch.tensor([[0] * (L - len(s)) + [1] * len(s) for s in seqs])
        pos = (lmask.cumsum(-1) - 1).clamp(min=0)
        left_out = model(input_ids=left, attention_mask=lmask, position_ids=pos).logits
        left_nopos = model(input_ids=left, attention_mask=lmask).logits
        right = torch.tensor([s + [pad] * (L - len(s)) for s in seqs])
        rmask = torch.tensor([[1] * len(s) + [0] * (L - len(s)) for s in seqs])
        right_out = model(input_ids=right, attention_mask=rmask).logits
    return {"unpadded": torch.stack(alone), "left-padded": left_out, "right-padded": right_out,
            "left-padded, no position_ids": left_nopos}


def main():
    args = parse_args(__doc__)
    wd = args.workdir
    report = Report()
    tj = os.path.join(wd, "tokenizer.json")
    build_tokenizer(tj)

    # Input: the first conversations as cada generate-style records (two completions each),
    # the rest as flat records.
    records, order = [], []  # order: (record index, completion index or None) per CONVS entry
    records.append({"id": "g0", "messages": CONVS[0][0], "label": "benign",
                    "completions": [{"text": CONVS[0][1], "finish_reason": "stop"}]})
    order.append((0, 0))
    for k in range(1, len(CONVS)):
        conv, resp = CONVS[k]
        rec = {"id": "f%d" % k, "response": resp, "label": "harmful" if k == 3 else "benign"}
        if len(conv) == 1:
            rec["prompt"] = conv[0]["content"]
        else:
            rec["messages"] = conv
        records.append(rec)
        order.append((len(records) - 1, None))
    inp = os.path.join(wd, "gens.jsonl")
    write_jsonl(inp, records)

    for i, (name, spec) in enumerate(MODELS.items()):
        d, K = make_model(wd, name, spec, tj, seed=200 + i)
        rewards = [{"name": "s%d" % k, "type": "rm", "model": d, "label": k, "on": "response"} for k in range(K)]
        rewards.append({"name": "sig", "type": "rm", "model": d, "normalize": "sigmoid", "on": "response"})
        rewards.append({"name": "std", "type": "rm", "model": d, "normalize": "standard", "mean": 0.25, "std": 1.5,
                        "on": "response"})
        if K > 1:
            rewards.append({"name": "diff", "type": "rm", "model": d, "label": K - 1, "minus_label": 0,
                            "on": "response"})
        cfg = os.path.join(d, "rewards.json")
        with open(cfg, "w") as f:
            json.dump({"rewards": rewards}, f, indent=1)
        out = os.path.join(d, "scored.jsonl")
        proc = run_cada(args.cada, ["score", "--rewards", cfg, "--input", inp, "--out", out, "--dtype", "float32",
                                    "--batch-size", "3"], check=False)
        if not report.check(name + ": cada score runs", proc.returncode == 0, proc.stderr.strip()):
            continue
        report.check(name + ": summary table printed", "reward" in proc.stdout and "s0" in proc.stdout, proc.stdout)
        got = read_jsonl(out)
        report.check(name + ": one output record per input", len(got) == len(records), "%d" % len(got))
        cada_scores = []
        for rec_i, comp_i in order:
            rec = got[rec_i]
            cada_scores.append(rec["completions"][comp_i]["scores"] if comp_i is not None else rec["scores"])
        report.check(name + ": input fields kept", got[0]["completions"][0]["finish_reason"] == "stop"
                     and got[1]["id"] == "f1")

        ref = hf_scores(d)
        for kind in ("unpadded", "left-padded", "right-padded"):
            logits = ref[kind]
            worst = 0.0
            for n, sc in enumerate(cada_scores):
                want = {"s%d" % k: logits[n, k].item() for k in range(K)}
                want["sig"] = 1.0 / (1.0 + math.exp(-logits[n, 0].item()))
                want["std"] = (logits[n, 0].item() - 0.25) / 1.5
                if K > 1:
                    want["diff"] = logits[n, K - 1].item() - logits[n, 0].item()
                for key, w in want.items():
                    worst = max(worst, abs(sc[key] - w))
                    report.check("%s: cada == transformers %s" % (name, kind), abs(sc[key] - w) <= TOL,
                                 "conversation %d reward %s: cada %.7f transformers %.7f" % (n, key, sc[key], w))
            print("%-18s max |cada - transformers (%s)| = %.2e" % (name, kind, worst))
        drift = (ref["left-padded, no position_ids"] - ref["unpadded"]).abs().max().item()
        print("%-18s (info) transformers left-padded without position_ids differs from unpadded by up to %.2e"
              % (name, drift))

    # Errors: a judge template without {response}; records without a prompt for an rm.
    d = os.path.join(wd, "llama_rm1")
    bad = os.path.join(wd, "bad.json")
    with open(bad, "w") as f:
        json.dump({"rewards": [{"name": "j", "type": "judge", "model": d, "parser": "safe_unsafe",
                                "template": "{prompt} only"},
                               {"name": "r", "type": "rm", "model": os.path.join(wd, "missing")}]}, f)
    proc = run_cada(args.cada, ["score", "--rewards", bad, "--input", inp, "--out", os.path.join(wd, "x.jsonl")],
                    check=False)
    report.check("misconfigured rewards: both problems reported, no output",
                 proc.returncode == 1 and "no {response}" in proc.stderr and "does not exist" in proc.stderr
                 and not os.path.exists(os.path.join(wd, "x.jsonl")), proc.stderr)
    noprompt = os.path.join(wd, "noprompt.jsonl")
    write_jsonl(noprompt, [{"response": "hi"}])
    ok_cfg = os.path.join(wd, "rm_only.json")
    with open(ok_cfg, "w") as f:
        json.dump({"rewards": [{"name": "r", "type": "rm", "model": d}]}, f)
    proc = run_cada(args.cada, ["score", "--rewards", ok_cfg, "--input", noprompt, "--out", os.path.join(wd, "y.jsonl")],
                    check=False)
    report.check("records without a prompt are refused for rm, naming the line",
                 proc.returncode == 1 and "noprompt.jsonl:1" in proc.stderr and "'prompt' or 'messages'" in proc.stderr,
                 proc.stderr)
    return report.finish()


if __name__ == "__main__":
    raise SystemExit(main())
