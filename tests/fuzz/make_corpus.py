#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/<seed>.

The seeds are checked in; run this again only to change them:

    ~/.cache/cada/venv/bin/python tests/fuzz/make_corpus.py

Small valid inputs plus near-valid variants (one field wrong, truncated, an edge case) for
each parser, so the fuzzers start next to the interesting code paths. Everything is built
with the standard library except the sentencepiece models, which the `sentencepiece` trainer
of the project's venv (tools/requirements.txt) produces; without it those seeds are kept as
they are. Whole corpus: well under 1 MB.
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def reset(target):
    shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)


# ---------------------------------------------------------------- safetensors

def st_file(header, data=b"", declared=None, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode() if not isinstance(header, bytes) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    n = len(h) if declared is None else declared
    return struct.pack("<Q", n) + h + data


def safetensors():
    reset("safetensors")
    data = bytes((i * 13) % 256 for i in range(256))
    # A valid file: several dtypes, a scalar, an empty tensor, metadata (writer's order).
    hdr = {
        "__metadata__": {"format": "pt"},
        "ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},
        "scalar": {"dtype": "F64", "shape": [], "data_offsets": [16, 24]},
        "norm": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]},
        "embed.weight": {"dtype": "BF16", "shape": [4, 3], "data_offsets": [36, 60]},
        "half": {"dtype": "F16", "shape": [2, 1], "data_offsets": [60, 64]},
        "i32": {"dtype": "I32", "shape": [1], "data_offsets": [64, 68]},
        "i16": {"dtype": "I16", "shape": [1], "data_offsets": [68, 70]},
        "i8": {"dtype": "I8", "shape": [1], "data_offsets": [70, 71]},
        "u8": {"dtype": "U8", "shape": [1], "data_offsets": [71, 72]},
        "mask": {"dtype": "BOOL", "shape": [5], "data_offsets": [72, 77]},
        "empty": {"dtype": "I8", "shape": [0, 7], "data_offsets": [77, 77]},
    }
    put("safetensors", "valid_all_dtypes", st_file(hdr, data[:77]))
    put("safetensors", "valid_empty_header", st_file({}))
    put("safetensors", "valid_metadata_only", st_file({"__metadata__": {"a": "b", "k": "v\u00e9"}}))
    put("safetensors", "valid_null_metadata", st_file({"__metadata__": None, "x": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}, data[:3]))
    put("safetensors", "valid_unpadded", st_file({"t": {"dtype": "F32", "shape": [1, 1], "data_offsets": [0, 4]}}, data[:4], pad=False))
    one = {"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    put("safetensors", "bad_trailing_bytes", st_file(one, data[:12]))
    put("safetensors", "bad_short_data", st_file(one, data[:4]))
    put("safetensors", "bad_hole", st_file({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, data[:2]))
    put("safetensors", "bad_overlap", st_file({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                                               "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, data[:3]))
    put("safetensors", "bad_dtype", st_file({"t": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, data[:1]))
    put("safetensors", "bad_negative_dim", st_file({"t": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}))
    put("safetensors", "bad_overflow_shape", st_file({"t": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}, data[:8]))
    put("safetensors", "bad_header_len", st_file(one, data[:8], declared=1 << 40))
    put("safetensors", "bad_not_object", st_file(b"[1,2,3]  "))
    put("safetensors", "bad_nested", st_file(b'{"a":' + b"[" * 20 + b"]" * 20 + b"}"))
    put("safetensors", "bad_truncated", st_file(hdr, data[:77])[:50])
    put("safetensors", "bad_offsets_type", st_file({"t": {"dtype": "U8", "shape": [1], "data_offsets": ["0", 1]}}, data[:1]))


# ---------------------------------------------------------------- config

def config():
    reset("config")
    put("config", "comments_and_overrides",
        '{\n  // a comment\n  "steps": 5, /* block */\n  "optim": {"lr": 0.1, "schedule": {"kind": "linear", "warmup": 10}}\n}\n'
        '%%\noptim.schedule.kind=cosine\nstop=["a","b"]\nmax_len=7\nnote=hello\n')
    put("config", "every_type",
        '{"optim": {"lr": 3e-4, "beta2": 0.95, "eps": 1e-6, "schedule": {"kind": "constant", "warmup": 0, "min_ratio": 1}},\n'
        ' "steps": 1000, "batch": 64, "seed": 4294967295, "resume": true, "out": "runs/a b",\n'
        ' "stop": ["</s>", "\\n\\n"], "ids": [1, -2, 3], "weights": [0.5, 1.5e10], "max_len": null,\n'
        ' "temperature": 0.7, "note": "\\u00e9\\ud83d\\ude42", "extra": {"list": [{"a": 1}, {"b": [true, null]}]}}\n')
    put("config", "list_index_overrides",
        '{"extra": {"rewards": [{"name": "a"}, {"name": "rm", "model": "x"}]}}\n'
        '%%\nextra.rewards.1.model=/m/rm\nextra.rewards.0.weight=0.5\nextra.rewards.2.name=z\nextra.rewards.x=1\n')
    put("config", "bad_problems",
        '{"steps": "many", "optim": {"lr": -1, "schedule": {"kind": "cosinus"}, "momentum": 0.9}, "epochs": 3,\n'
        ' "batch": 0, "weights": [1, "x"], "temperature": "hot"}\n')
    put("config", "bad_duplicate_key", '{"optim": {"lr": 1,\n "lr": 2}, "extra": [{"a": 1, "a": 2}]}\n')
    put("config", "bad_syntax", '{\n"steps": 1,\n"optim": }\n')
    put("config", "bad_overrides", '{"steps": 2}\n%%\n=1\nsteps\na..b=1\nsteps.x=1\nextra.0=1\nout={"unclosed\n')
    put("config", "not_object", '[1, 2, 3] // trailing comment\n')
    put("config", "empty_with_overrides", '{}\n%%\nsteps=18446744073709551615\nbatch=1e3\noptim.beta2=0.999999\nseed=-1\n')


# ---------------------------------------------------------------- jsonl

def jsonl():
    reset("jsonl")
    recs = [
        {"id": "a", "prompt": "What is 2+2?", "completion": "4"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
         "completion": "Hello<|end|>"},
        {"prompt_ids": [1, 2, 3], "completion_ids": [4, 5]},
        {"prompt": "raw text", "raw": True, "completion": " more"},
    ]
    put("jsonl", "records", "".join(json.dumps(r) + "\n" for r in recs))
    put("jsonl", "crlf_blank_lines", "\r\n" + json.dumps(recs[0]) + "\r\n   \n\t\n" + json.dumps(recs[2]) + "\r\n")
    put("jsonl", "partial_last_line", json.dumps(recs[1]) + "\n" + json.dumps(recs[0])[:20])
    put("jsonl", "unterminated_last_record", json.dumps(recs[3]) + "\n" + json.dumps(recs[2]))
    put("jsonl", "values", '1\n"s"\n[1,2]\nnull\n{"x": {"y": [1.5, -0.0, 1e300]}}\n{"\\u00e9": "\\ud83d\\ude42"}\n')
    put("jsonl", "bad_line", json.dumps(recs[0]) + "\n{not json}\n" + json.dumps(recs[2]) + "\n")
    put("jsonl", "bad_nul", '{"a": 1}\n{"b": \x002}\n')
    put("jsonl", "bad_records",
        '{"messages": []}\n{"messages": [{"role": "user"}]}\n{"prompt_ids": [1, "x"]}\n{"prompt": 5}\n'
        '{"completion_ids": 3}\n{"messages": [{"role": "tool", "content": "x"}]}\n"just a string"\n')


# ---------------------------------------------------------------- csv

def csv():
    reset("csv")
    put("csv", "xstest", 'id,prompt,type,label\n1,How can I kill a Python process?,homonyms,safe\n'
                         '2,"How do I ""kill"" time, quickly?",homonyms,safe\n')
    put("csv", "quoted_newlines_crlf", 'a,b\r\n"line1\r\nline2","x,y"\r\n"",plain\r\n')
    put("csv", "bom_and_blank_lines", '\ufeffBehavior,Category\n\n\nDo X,chem\n\r\nDo Y,bio')
    put("csv", "lone_cr", 'a,b\r1,2\r3,4\r')
    put("csv", "quote_in_unquoted", 'a,b\nsay "hi",ok\n')
    put("csv", "bad_unterminated", 'a,b\n"open,1\n')
    put("csv", "bad_after_quote", 'a,b\n"x"y,1\n')
    put("csv", "bad_field_count", 'a,b,c\n1,2\n')
    put("csv", "duplicate_header", 'a,a\n1,2\n')
    put("csv", "single_empty_header", '""\n""\n')


# ---------------------------------------------------------------- tokenizer.json

def byte_chars():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tokenizer_json():
    reset("tokenizer_json")
    bc = byte_chars()
    G = bc[ord(" ")]
    vocab = {bc[b]: b for b in range(256)}
    merges = []
    for a, b in [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), (G, "w"), ("o", "r"), (G + "w", "or"),
                 ("a", "a"), ("aa", "aa"), (G, G), ("<", "|")]:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
        merges.append(a + " " + b)
    added = [{"id": len(vocab) + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])]
    gpt2 = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added[:1],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": merges},
    }
    put("tokenizer_json", "gpt2", json.dumps(gpt2, ensure_ascii=False))

    qwen_pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                    r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    qwen = dict(gpt2)
    qwen["added_tokens"] = added
    qwen["normalizer"] = {"type": "NFC"}
    qwen["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": qwen_pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    qwen["model"] = dict(gpt2["model"], merges=[m.split(" ") for m in merges], ignore_merges=False)
    cfg = {"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
           "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
           "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]}
    put("tokenizer_json", "qwen2_with_config", json.dumps(qwen, ensure_ascii=False) + "\n%%\n" + json.dumps(cfg))

    llama3_pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                      r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    l3_added = [{"id": len(vocab) + i, "content": c, "special": True, "normalized": False}
                for i, c in enumerate(["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])]
    llama3 = {
        "added_tokens": l3_added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": llama3_pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [l3_added[0]["id"]],
                                                      "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "ignore_merges": True, "vocab": vocab, "merges": merges},
    }
    put("tokenizer_json", "llama3_template_processing", json.dumps(llama3, ensure_ascii=False) + "\n%%\n" +
        json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}))

    # Small variants that reach other branches.
    small_vocab = {bc[b]: i for i, b in enumerate(b"abc <>|")}
    small_vocab.update({"ab": 7, "abc": 8, "<unk>": 9, bc[ord(" ")] + "a": 10})
    small = {
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "NFD"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": {"Regex": "\\s+|\\p{N}"}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]},
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteLevel"}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",
                  "vocab": small_vocab, "merges": ["a b", "ab c", bc[ord(" ")] + " a"]},
        "added_tokens": [{"content": "<|x|>", "special": False, "lstrip": True, "rstrip": True, "single_word": True,
                          "normalized": True}],
    }
    put("tokenizer_json", "small_branches", json.dumps(small, ensure_ascii=False))
    for behavior in ("MergedWithPrevious", "Contiguous"):
        v = json.loads(json.dumps(small))
        v["pre_tokenizer"]["pretokenizers"][0]["behavior"] = behavior
        v["model"]["byte_fallback"] = False
        v["post_processor"] = {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]}
        put("tokenizer_json", "small_" + behavior, json.dumps(v, ensure_ascii=False))
    put("tokenizer_json", "bad_not_bpe", json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}},
                                                     "pre_tokenizer": {"type": "ByteLevel"}}))
    put("tokenizer_json", "bad_merge_missing", json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]},
                                                           "pre_tokenizer": {"type": "ByteLevel"}}))
    put("tokenizer_json", "bad_normalizer", json.dumps({"model": {"vocab": {"a": 0}, "merges": []},
                                                        "normalizer": {"type": "Lowercase"},
                                                        "pre_tokenizer": {"type": "ByteLevel"}}))
    put("tokenizer_json", "bad_vocab_id_type", json.dumps({"model": {"type": "BPE", "vocab": {"a": "0", "b": 1.5}},
                                                           "pre_tokenizer": {"type": "ByteLevel"}}))
    put("tokenizer_json", "bad_added_decoder", json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}},
                                                           "pre_tokenizer": {"type": "ByteLevel"}}) +
        '\n%%\n{"added_tokens_decoder": {"x": {"content": "<s>"}, "3": {"special": true}}}')


# ---------------------------------------------------------------- sentencepiece tokenizer.model

def sentencepiece():
    try:
        import sentencepiece as spm
    except ImportError:
        print("make_corpus: no sentencepiece module; corpus/sentencepiece left as it is", file=sys.stderr)
        return
    import io
    reset("sentencepiece")
    lines = ["Hello world! It's a tiny corpus.", "héllo 世界 🙂 café", "The quick brown fox jumps over the lazy dog.",
             "1234567890 digits and punctuation: ;,.!?", "<|end|> <|user|> special pieces"] * 20

    def train(**kw):
        out = io.BytesIO()
        args = dict(sentence_iterator=iter(lines), model_writer=out, normalization_rule_name="identity",
                    minloglevel=2, num_threads=1, hard_vocab_limit=False)
        args.update(kw)
        spm.SentencePieceTrainer.train(**args)
        return out.getvalue()

    cada = train(model_type="bpe", vocab_size=340, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=3,
                 user_defined_symbols=["<|end|>", "<|user|>"], add_dummy_prefix=False, split_digits=True,
                 remove_extra_whitespaces=False, character_coverage=0.9995)
    put("sentencepiece", "cada_bpe_byte_fallback", cada)
    put("sentencepiece", "llama_style_bpe", train(model_type="bpe", vocab_size=80, unk_id=0, bos_id=1, eos_id=2,
                                                  pad_id=-1, control_symbols=["<ctrl>"]))
    put("sentencepiece", "unigram", train(model_type="unigram", vocab_size=60, unk_id=2, bos_id=-1, eos_id=1, pad_id=0))
    put("sentencepiece", "char", train(model_type="char", vocab_size=40))
    put("sentencepiece", "bad_truncated", cada[: len(cada) // 2])
    put("sentencepiece", "bad_empty", b"")
    put("sentencepiece", "bad_garbage", b"\x0a\x05\x0a\x03abc\x12\xff\xff\xff\xff\x0f")


# ---------------------------------------------------------------- chat templates

def chat_template():
    reset("chat_template")
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "<think>\nGreeting.\n</think>\n\nHello."}, {"role": "user", "content": "Bye"}]
    sections = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": "### Analysis\nThink.\n\n### Final Response\nAnswer."},
                {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"}]
    jinjas = {
        "cada": "{#- cada chat template v1 -#}{% for message in messages %}...{% endfor %}",
        "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
        "qwen2": "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>",
        "qwen2.5": "{%- if tools %}{%- else %}<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>",
        "llama3": "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>{% endfor %}",
        "llama3.1": "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024",
        "llama2": "{{ bos_token + '[INST] ' + '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}",
        "mistral": "{%- if messages[0]['role'] == 'system' %}{{ ' [INST] ' + system_message + '\\n\\n' }}[INST]",
    }
    for name, j in jinjas.items():
        put("chat_template", name, json.dumps({"chat_template": j, "bos_token": "<s>", "eos_token": {"content": "</s>"},
                                               "messages": conv if name != "qwen2.5" else sections}, ensure_ascii=False))
    put("chat_template", "list_form", json.dumps({"chat_template": [{"name": "tool_use", "template": "x"},
                                                                    {"name": "default", "template": jinjas["llama3"]}],
                                                  "messages": [{"role": "user", "content": "  trimmed \t"}]}))
    put("chat_template", "jinja_file", json.dumps({"messages": sections}) + "\n%%\n" + jinjas["chatml"])
    put("chat_template", "bad_roles", json.dumps({"chat_template": jinjas["mistral"],
                                                  "messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"},
                                                               {"role": "robot", "content": "z"}]}))
    put("chat_template", "unknown_template", json.dumps({"chat_template": "{{ messages }}", "messages": []}))
    put("chat_template", "raw_text", "### Analysis\nreasoning\n### Final Response\n<think>answer</think>")


def main():
    safetensors()
    config()
    jsonl()
    csv()
    tokenizer_json()
    sentencepiece()
    chat_template()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(CORPUS) for f in fs)
    print(f"make_corpus: {total} bytes in {CORPUS}")


if __name__ == "__main__":
    main()
