"""Parity: Hugging Face chat templates rendered by cada's Jinja engine against transformers.

For each family (Qwen2.5, Qwen3, Llama-2, Llama-3, Llama-3.1, Mistral v0.1 / v0.2 / v0.3,
Gemma-2, Phi-3, Phi-4, cada's own template) this writes an HF-style folder in --workdir: a
tokenizer.json (byte-level BPE built with the tokenizers library, the families' special
tokens added) and the template in each of the places transformers reads it from
(tokenizer_config.json's chat_template as a string, as a list of {name, template} with
"default" and "tool_use", or chat_template.jinja), special tokens as strings or AddedToken
objects. Then it renders conversations (system turns, multi-turn, tool calls and tool
results, reasoning, unicode and Jinja-like text) with and without a generation prompt,
with and without tools, with extra template variables (enable_thinking on / off), through
`cada tokenize --chat` and through apply_chat_template, and requires identical prompt
strings and ids (apply_chat_template(tokenize=True) encodes the prompt without adding
special tokens). Conversations the template rejects must make cada fail too.
"""

import copy
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

from parity_common import Report, parse_args, render_chat, run_cada
import test_chat_templates as base

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "data", "chat_templates")

SPECIAL_TOKENS = base.SPECIAL_TOKENS + [
    "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<|im_sep|>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "<think>", "</think>", "<tool_call>",
    "</tool_call>", "<|eom_id|>", "<|python_tag|>"]


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def added(content):
    """A special token as tokenizer_config.json often stores it (an AddedToken object)."""
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False}


# name -> dict(template placement, tokens, whether the template reads tools / thinking)
def families(cada_jinja):
    return {
        "qwen2.5": dict(config=base.QWEN25, eos="<|im_end|>", tools=True),
        "qwen3": dict(file=fixture("qwen3.jinja"), eos="<|im_end|>", pad="<|endoftext|>", tools=True, thinking=True),
        "llama2": dict(config=base.LLAMA2, bos="<s>", eos="</s>", unk="<s>"),
        "llama3": dict(config=base.LLAMA3, bos=added("<|begin_of_text|>"), eos=added("<|eot_id|>")),
        "llama3.1": dict(config=base.LLAMA31, bos="<|begin_of_text|>", eos="<|eot_id|>", tools=True),
        "mistral-v0.1": dict(config=fixture("mistral_v01.jinja"), bos="<s>", eos="</s>"),
        "mistral-v0.2": dict(config=base.MISTRAL, bos="<s>", eos="</s>"),
        # v0.3 as a list: the plain template as "default", the tools template as "tool_use"
        "mistral-v0.3": dict(config=[{"name": "default", "template": fixture("mistral_v03.jinja")},
                                     {"name": "tool_use", "template": fixture("mistral_v03.jinja")}],
                             bos=added("<s>"), eos=added("</s>"), tools=True),
        "gemma2": dict(config=fixture("gemma2.jinja"), bos="<bos>", eos="<eos>", pad="<pad>"),
        "phi3": dict(config=fixture("phi3.jinja"), bos="<s>", eos="<|endoftext|>"),
        "phi4": dict(file=fixture("phi4.jinja"), config="{{ 'chat_template.jinja must win' }}", eos="<|im_end|>"),
        "cada": dict(config=cada_jinja, bos="<s>", eos="<|end|>"),
    }


def m(role, content, **extra):
    d = {"role": role, "content": content}
    d.update(extra)
    return d


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city, in °C",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                        "days": {"type": "integer"}},
                       "required": ["city"]}}},
    {"type": "function", "function": {"name": "now", "description": "The time", "parameters": {"type": "object",
                                                                                            "properties": {}}}},
]
CALL = {"id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}

CONVERSATIONS = base.CONVERSATIONS + base.EXTRA + [
    [m("user", "Weather in Zürich?"), m("assistant", None, tool_calls=[CALL]),
     m("tool", "{\"temp\": 3.5}", tool_call_id="call12345"), m("assistant", "It is 3.5 °C."), m("user", "Thanks")],
    [m("system", "Use tools."), m("user", "Time?"),
     m("assistant", "", tool_calls=[{"id": "abcdefghi", "type": "function",
                                     "function": {"name": "now", "arguments": "{}"}}]),
     m("tool", "12:00", tool_call_id="abcdefghi")],
    [m("user", "2+2?"), m("assistant", "<think>\nadd them\n</think>\n\n4"), m("user", "and 3+3?")],
    [m("user", "q"), m("assistant", "a", reasoning_content="thought about it")],
    [m("user", "x", name="alice"), m("assistant", "y", extra_field=[1, 2.5, None, True])],
]


def build_tokenizer_json(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [json.dumps(c, ensure_ascii=False) for c in CONVERSATIONS] * 5 + [json.dumps(TOOLS)] * 5
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=700, special_tokens=SPECIAL_TOKENS,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    tok.save(path)


def make_folder(wd, name, fam, tokenizer_json):
    d = os.path.join(wd, name)
    os.makedirs(d, exist_ok=True)
    with open(tokenizer_json, encoding="utf-8") as src, open(os.path.join(d, "tokenizer.json"), "w",
                                                               encoding="utf-8") as dst:
        dst.write(src.read())
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast"}
    for key in ("bos", "eos", "unk", "pad"):
        if key in fam:
            cfg[key + "_token"] = fam[key]
    if "config" in fam:
        cfg["chat_template"] = fam["config"]
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    if "file" in fam:
        with open(os.path.join(d, "chat_template.jinja"), "w", encoding="utf-8") as f:
            f.write(fam["file"])
    return d


def hf_render(hf, case):
    try:
        text = hf.apply_chat_template(copy.deepcopy(case["messages"]), tools=case.get("tools"), tokenize=False,
                                      add_generation_prompt=case["gen"], **case.get("kwargs", {}))
        return text, None
    except Exception as e:  # the template raised, or the conversation is malformed
        return None, "%s: %s" % (type(e).__name__, e)


def record(case):
    r = {"messages": case["messages"], "add_generation_prompt": case["gen"]}
    if case.get("tools") is not None:
        r["tools"] = case["tools"]
    if case.get("kwargs"):
        r["chat_template_kwargs"] = case["kwargs"]
    return r


def cada_render(cada, d, cases, tag):
    """Renders `cases` in one cada run (render_chat): (output records, stderr, whether cada wrote
    one per case); when it did not, each case gets an "error" naming the failed run."""
    got, proc = render_chat(cada, d, [record(c) for c in cases], tag)
    if got is None:
        got = [{"error": "no output record (exit %d): %s" % (proc.returncode, proc.stderr.strip()[-400:])}] * len(cases)
        return got, proc.stderr, False
    return got, proc.stderr, True


def compare_family(report, cada, name, d, cases):
    """Renders every case with transformers and cada (one cada run); checks text and ids, and that
    cases the template rejects fail in both. Returns (rendered, rejected, cada's stderr)."""
    hf = AutoTokenizer.from_pretrained(d)
    good, bad = [], []
    for c in cases:
        text, err = hf_render(hf, c)
        (good if err is None else bad).append((c, text, err))
    got, stderr, ok = cada_render(cada, d, [g[0] for g in good] + [b[0] for b in bad], "all")
    report.check(name + ": cada run writes one record per case", ok, stderr.strip()[-400:])
    for (c, want, _), rec in zip(good, got):
        if "error" in rec:
            report.check(name + ": cada renders what transformers renders", False,
                         "case %s\n  cada: %s\n  hf: %r" % (json.dumps(record(c), ensure_ascii=False)[:400],
                                                            rec["error"][-400:], want))
            continue
        report.check(name + ": prompt == apply_chat_template", rec["prompt"] == want,
                     "case %s\n  cada: %r\n  hf:   %r" % (json.dumps(record(c), ensure_ascii=False)[:400],
                                                        rec["prompt"], want))
        ids = hf(want, add_special_tokens=False)["input_ids"]
        report.check(name + ": ids == apply_chat_template(tokenize=True)", rec["ids"] == ids,
                     "prompt %r\n  cada: %s\n  hf:   %s" % (want[:200], rec["ids"][:30], ids[:30]))
    for (c, _, err), rec in zip(bad, got[len(good):]):
        report.check(name + ": rejected as transformers rejects it", "error" in rec,
                     "case %s: transformers raised %s but cada rendered %r" % (
                         json.dumps(record(c), ensure_ascii=False)[:300], err, rec.get("prompt")))
    return len(good), len(bad), stderr


def cases_for(fam):
    out = []
    for conv in CONVERSATIONS:
        for gen in (False, True):
            out.append({"messages": conv, "gen": gen})
            if fam.get("tools"):
                out.append({"messages": conv, "gen": gen, "tools": TOOLS})
            if fam.get("thinking"):
                out.append({"messages": conv, "gen": gen, "kwargs": {"enable_thinking": False}})
                out.append({"messages": conv, "gen": gen, "kwargs": {"enable_thinking": True}})
    return out


def main():
    args = parse_args(__doc__)
    wd = args.workdir
    report = Report()
    tj = os.path.join(wd, "tokenizer.json")
    build_tokenizer_json(tj)
    cada_jinja = run_cada(args.cada, ["tokenize", "--print-cada-jinja"]).stdout
    for name, fam in families(cada_jinja).items():
        d = make_folder(wd, name, fam, tj)
        n_good, n_bad, stderr = compare_family(report, args.cada, name, d, cases_for(fam))
        print("%-13s %3d cases rendered, %3d rejected by the template" % (name, n_good, n_bad))
        # `cada info`-style provenance: where the template came from.
        where = "chat_template.jinja" if "file" in fam else "tokenizer_config.json"
        report.check(name + ": template source logged", "chat template: jinja from " + where in stderr,
                     stderr.strip()[-300:])

    # The Mistral folder forced to the built-in `mistral` template renders v0.2's spacing, while
    # its own v0.3 template renders "[INST] Hello![/INST]" as transformers does.
    d = os.path.join(wd, "mistral-v0.3")
    own, _, _ = cada_render(args.cada, d, [{"messages": [m("user", "Hello!")], "gen": False}], "hello")
    report.check("mistral v0.3 renders its own template", own[0].get("prompt") == "<s>[INST] Hello![/INST]", repr(own))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
