"""Parity: `cada tokenize` on tokenizer.json files of every family against the `tokenizers` library.

In --workdir this trains a sentencepiece BPE model with byte fallback (control pieces [INST],
[/INST]; user-defined piece <mask>) and turns it into tokenizer.json files the way the
sentencepiece families ship them (vocab and score-ordered merges from transformers'
generate_merges, BPE with unk_token <unk>, fuse_unk and byte_fallback, control and
user-defined pieces as non-normalized added tokens, <s> $A post-processor):
  llama-legacy        Prepend + Replace normalizer, no pre-tokenizer, Replace/ByteFallback/Fuse/
                      Strip decoder (Llama-2, Mistral-7B-v0.3 as published);
  llama-first         Metaspace prepend_scheme first, split false (transformers' legacy=False);
  llama-always        Metaspace always, split false (transformers 5's LlamaTokenizer);
  llama-never         Metaspace never, no Strip in the decoder (add_prefix_space=False);
  metaspace-*-split   Metaspace with split true and the Metaspace decoder, each prepend_scheme;
  gemma-style         Replace normalizer, Split(" ", merged_with_previous), no prefix space;
  bytelevel-added     a Qwen2-style byte-level BPE (Split regexes with \\p{..}, \\w, \\d);
  *-added             legacy, first and byte-level with 32 added tokens, one per combination of lstrip /
                      rstrip / single_word / normalized / special;
plus a byte-less BPE with NFKC + Lowercase + Strip and Whitespace + Digits + Punctuation.
Each file is compared on >= 1000 strings (leading and repeated spaces, tabs, newlines, control
tokens as text, CJK, emoji, combining marks, characters from Unicode 15 and 16): ids with and
without add_special_tokens, decode, decode with skip_special_tokens, decode of id prefixes, all
against `tokenizers.Tokenizer`; the encode ids also against transformers' tokenizer loaded from
the same folder. Required: no mismatch.
"""

import json
import os
import random
import sys
import time

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from parity_common import Report, parse_args, run_cada
from test_tokenizers import (QWEN2_PATTERN, HfReference, bpe_trainer, check_tokenizer, make_string, test_strings,
                             training_corpus)

SPIECE = "\u2581"
FLAG_NAMES = ("lstrip", "rstrip", "single_word", "normalized", "special")
ADDED = ["[T%02d]" % k for k in range(32)]

# Characters assigned in Unicode 15.0, 15.1 and 16.0, and a few whose category matters.
NEW_CHARS = ["\U0001F6DC", "\U00011F00\U00011F03", "\U00011F50", "\U0002EBF0", "\U00031350", "\U0001E030",
             "\U0001D2C0", "\U0001E4D0", "\u0CF3", "\U00010EFD", "\u1C89", "\U00010D4A", "\U00011380", "\U0001FAE8",
             "\U00010940", "\U000E0001", "\u2E5D",
             # compatibility and case mappings that differ between Unicode versions
             "\U0001FBF0", "\u32FF", "\uA7F2", "\u0130", "\uA7CB", "\U00010D50", "\u01C5", "\ufb01", "\u216B",
             "\u1E9E", "\u03A3\u03A3", "A\u030A", "\u1100\u1161"]
CONTROL = ["<s>[INST] hi [/INST]", "<s>[INST]hi[/INST]", "<s> [INST]  hi  [/INST] ok</s>", "[INST]", " [INST] ",
           "<s>", " <s>", "<s> ", "</s><s>", "<unk>", "<mask>", " <mask> ", "a<mask>b", "[/INST]\n", "\t[INST]\t"]
SPACES = [" ", "  ", "   ", "\t", " \t", "\n", " \n", "\n ", "\r\n", "\u00a0", "\u3000", ""]


def extra_strings(seed=99, n=400):
    rng = random.Random(seed)
    out = list(CONTROL)
    out += [" hello", "  hello", "hello ", "hello  ", " ", "  ", "\thello", "\nhello", "hello\n", "a  b   c",
            " " + SPIECE + "x", SPIECE, SPIECE * 3 + " x", "x" + SPIECE, "\u2581\u2581 a"]
    out += ["%s%s%s" % (rng.choice(SPACES), c, rng.choice(SPACES)) for c in NEW_CHARS]
    out += ["x" + c + "y " + c + c for c in NEW_CHARS]
    pieces = ADDED + CONTROL + NEW_CHARS + ["word", "x", "1", "日本", "é", "😀"]
    for _ in range(n):
        k = rng.randrange(1, 7)
        s = ""
        for _ in range(k):
            s += rng.choice(SPACES) + rng.choice(pieces)
            if rng.random() < 0.3:
                s += rng.choice(["abc", "x", "1", ""])
        out.append(s + rng.choice(SPACES))
    for _ in range(100):
        out.append(rng.choice(SPACES) + make_string(rng) + rng.choice(CONTROL) + make_string(rng))
    return out


# ---------------------------------------------------------------- sentencepiece-style files


def train_sp(wd, corpus):
    prefix = os.path.join(wd, "sp")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([l for l in corpus if l.strip()]), model_prefix=prefix, vocab_size=2000,
        model_type="bpe", byte_fallback=True, character_coverage=0.9995, user_defined_symbols=["<mask>"],
        control_symbols=["[INST]", "[/INST]"], num_threads=2, minloglevel=2)
    return prefix + ".model"


def sp_bpe(model_file):
    """The BPE model and added tokens transformers' converters build from a sentencepiece model."""
    from transformers.convert_slow_tokenizer import generate_merges
    proto = sentencepiece_model_pb2.ModelProto()
    with open(model_file, "rb") as f:
        proto.ParseFromString(f.read())
    vocab_scores = [(p.piece, p.score) for p in proto.pieces]
    vocab = {p: i for i, (p, _) in enumerate(vocab_scores)}
    merges = generate_merges(vocab, vocab_scores)
    T = sentencepiece_model_pb2.ModelProto.SentencePiece
    added = [AddedToken(p.piece, normalized=False, special=p.type != T.USER_DEFINED)
             for p in proto.pieces if p.type in (T.UNKNOWN, T.CONTROL, T.USER_DEFINED)]
    return vocab, merges, added


def llama_decoder(strip):
    seq = [decoders.Replace(SPIECE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if strip:
        seq.append(decoders.Strip(content=" ", left=1))
    return decoders.Sequence(seq)


def sp_tokenizer(spec, variant):
    vocab, merges, added = spec
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True, dropout=None))
    tok.add_tokens(added)
    if variant == "llama-legacy":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPIECE), normalizers.Replace(" ", SPIECE)])
        tok.decoder = llama_decoder(True)
    elif variant in ("llama-first", "llama-always", "llama-never"):
        scheme = variant.split("-")[1]
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme=scheme, split=False)
        tok.decoder = llama_decoder(scheme != "never")
    elif variant.startswith("metaspace-"):
        scheme = variant.split("-")[1]
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme=scheme, split=True)
        tok.decoder = decoders.Metaspace(replacement=SPIECE, prepend_scheme=scheme)
    elif variant == "gemma-style":
        tok.normalizer = normalizers.Replace(" ", SPIECE)
        tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
        tok.decoder = llama_decoder(False)
    else:
        raise ValueError(variant)
    bos = vocab["<s>"]
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    return tok


def add_flag_tokens(tok):
    tokens = []
    for k, content in enumerate(ADDED):
        flags = {name: bool(k >> b & 1) for b, name in enumerate(FLAG_NAMES)}
        tokens.append(AddedToken(content, **flags))
    tok.add_tokens(tokens)


def save(tok, d, config):
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast"}
    cfg.update(config)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f)
    return d


def build_files(wd, corpus):
    spec = sp_bpe(train_sp(wd, corpus))
    sp_cfg = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    out = []
    for variant in ["llama-legacy", "llama-first", "llama-always", "llama-never", "metaspace-always-split",
                    "metaspace-first-split", "metaspace-never-split", "gemma-style"]:
        out.append((variant, save(sp_tokenizer(spec, variant), os.path.join(wd, variant), sp_cfg)))
    for variant in ["llama-legacy", "llama-first"]:
        tok = sp_tokenizer(spec, variant)
        add_flag_tokens(tok)
        out.append((variant + "-added", save(tok, os.path.join(wd, variant + "-added"), sp_cfg)))
    out.append(("plain-bpe", build_plain_bpe(wd, corpus)))
    out.append(("bytelevel-added", build_byte_level(wd, corpus)))
    return out


def build_byte_level(wd, corpus):
    """Qwen2-style byte-level BPE (regex classes decide the splits of Unicode 15/16 characters)
    with the added-token flag combinations."""
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(r"\p{Lo}+|\p{M}+|\w+|\d|\P{L}"), behavior="merged_with_previous"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus + NEW_CHARS * 5, bpe_trainer(2500, ["<s>", "</s>", "[INST]", "[/INST]"]))
    add_flag_tokens(tok)
    return save(tok, os.path.join(wd, "bytelevel-added"), {"eos_token": "</s>"})


def build_plain_bpe(wd, corpus):
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(True),
                                                 pre_tokenizers.Punctuation()])
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, show_progress=False, special_tokens=["[UNK]"])
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens([AddedToken("[CLS]", special=True), AddedToken("[SEP]", special=True)])
    return save(tok, os.path.join(wd, "plain-bpe"), {"unk_token": "[UNK]"})


# ---------------------------------------------------------------- checks


def check_transformers(args, report, name, d, strings):
    """transformers' tokenizer on the same folder gives the ids `tokenizers` gives."""
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(d)
    ref = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    for s in strings:
        a, b = hf.encode(s, add_special_tokens=False), ref.encode(s, add_special_tokens=False).ids
        report.check(name + ": transformers encode == tokenizers", a == b, "%r\n  transformers: %s\n  tokenizers: %s"
                     % (s[:80], a[:30], b[:30]))


def check_errors(args, report, wd):
    d = os.path.join(wd, "bad")
    os.makedirs(d, exist_ok=True)
    tj = {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled"}]}}
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tj, f)
    path = os.path.join(d, "in.jsonl")
    with open(path, "w") as f:
        f.write('{"text": "a"}\n')
    p = run_cada(args.cada, ["tokenize", "--model", d, "--input", path, "--out", os.path.join(d, "o.jsonl")],
                 check=False)
    ok = p.returncode != 0 and "normalizer.normalizers[1].type" in p.stderr and "tokenizer.json" in p.stderr
    report.check("unknown normalizer: error names file and key", ok, p.stderr.strip())


def main():
    args = parse_args(__doc__)
    t0 = time.time()
    corpus = training_corpus()
    strings = test_strings(n=1000) + extra_strings()
    files = build_files(args.workdir, corpus)
    print("built %d tokenizer.json files in %.1fs; %d strings" % (len(files), time.time() - t0, len(strings)))
    report = Report()
    for name, d in files:
        check_tokenizer(args, report, name, d, HfReference(d), strings)
        check_transformers(args, report, name, d, strings[:300] + strings[-500:])
    check_errors(args, report, args.workdir)
    print("total %.1fs" % (time.time() - t0))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
