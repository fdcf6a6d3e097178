"""Parity: `cada tokenize` against the Python tokenizer packages.

In --workdir this trains
  (a) a sentencepiece BPE model with byte fallback (python sentencepiece trainer),
  (b) a byte-level BPE tokenizer.json with the Qwen2 split regex and an NFC normalizer,
      merges saved in the "a b" string format, plus added tokens with non-default flags,
  (c) a byte-level BPE tokenizer.json with the Llama-3 regex, ignore_merges and a
      TemplateProcessing post-processor (<|begin_of_text|> $A),
  (d) a GPT-2 style tokenizer.json (ByteLevel pre-tokenizer with its own regex),
  (e) cada's own tokenizer: `cada init-model --train-tokenizer` (train_sentencepiece),
      compared with transformers.AutoTokenizer loading that folder,
then encodes >= 1000 varied strings with `cada tokenize` (one run per tokenizer over a
file of all strings) and requires the ids of the Python package, the decoded text of
the Python decode, and the same with add_special_tokens / skip_special_tokens for a
subset. Reference rule for sentencepiece: the strings of unknown/control/user-defined
pieces are split out first (leftmost-longest) and the text between them is encoded
with SentencePieceProcessor.encode; decoding renders those pieces as their strings and
decodes the runs between them with SentencePieceProcessor.decode.
"""

import json
import os
import random
import sys
import time

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from parity_common import Report, parse_args, read_jsonl, run_cada, write_jsonl

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

SPECIAL_STRINGS = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|begin_of_text|>", "<|start_header_id|>",
    "<|end_header_id|>", "<|user|>", "<|end|>", "<s>", "</s>", "<unk>", "<mask>", "[TOOL]", "NEWTOK",
]

# ---------------------------------------------------------------- string generator

WORDS = (
    "the quick brown fox jumps over lazy dog safety alignment model refuse answer question harmful benign "
    "request policy reasoning case augmented deliberative helpful honest harmless tokenizer parity byte level "
    "merge rank vocabulary sentence piece hello world Python C++ libtorch HTTP JSON API GPU CUDA"
).split()
CONTRACTIONS = ["it's", "IT'S", "It'S", "don't", "DON'T", "we're", "WE'RE", "they've", "I'm", "I'M", "you'll",
                "YOU'LL", "he'd", "HE'D", "'s", "'S", "'ſ", "ma'am", "o'clock", "rock'n'roll", "'twas"]
SCRIPTS = [
    "Привет, как дела? Съешь же ещё этих мягких французских булок",
    "Γειά σου Κόσμε· καλημέρα",
    "مرحبا بالعالم، كيف حالك؟",
    "שלום עולם",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีชาวโลก ภาษาไทย",
    "안녕하세요 세계, 한국어 텍스트",
    "你好，世界！这是一个测试。",
    "日本語のテキストです。カタカナとひらがな、漢字。",
    "Tiếng Việt có dấu: Đường phố",
    "Ünïcödé çäfé naïve façade résumé Ångström",
    "ქართული ენა",
    "Հայերեն լեզու",
    "ትግርኛ ኣማርኛ",
    "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
]
COMBINING = ["e\u0301", "a\u0308\u0323", "n\u0303", "o\u0302\u0300", "\u0065\u0301\u0301", "A\u030a",
             "\u1100\u1161\u11a8", "i\u0307", "\u0915\u093f", "c\u0327", "\u0301alone", "Z\u0335\u0321\u0358"]
EMOJI = ["😀", "👍🏽", "👩‍👩‍👧‍👦", "👨🏿‍💻", "🇺🇸", "🇯🇵", "1️⃣", "❤️", "🏳️‍🌈", "🤷‍♀️", "🧑‍🔬", "✨", "🎉🎉🎉",
         "🙂🙃", "©", "™", "☃"]
WHITESPACE = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2003",
              "\u0085", "\u2028", "\u200b", "\u202f", "\x0b", "\x0c", "\x1c", "    \n", " \t\n"]
PUNCT = ["!", "!!!", "?", "...", "…", "—", "–", "-", "«»", "“quotes”", "‘single’", "(parens)", "[brackets]", "{}",
         "@user", "#hashtag", "$100", "50%", "a+b=c", "x*y/z", "C:\\path\\file.txt", "http://example.com/a?b=c&d=e",
         "<html><body>", "</div>", "<<>>", "::", ";;", "```", "~~", "^_^", ":-)", "&amp;", "\\n", "'", "\"", "`"]
DIGITS = ["0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "1,000,000", "2024-06-01", "0x1F",
          "٣٤٥", "१२३", "①②", "½", "²³", "Ⅷ"]
CODE = ["def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
        "if x==1:\n  pass", "SELECT * FROM t WHERE a='b';", "#include <vector>", "    indented\n        more"]


def fragment(rng):
    kind = rng.randrange(10)
    if kind == 0:
        return rng.choice(CONTRACTIONS)
    if kind == 1:
        s = rng.choice(SCRIPTS)
        a = rng.randrange(len(s))
        return s[a:a + rng.randrange(1, 25)]
    if kind == 2:
        return rng.choice(COMBINING)
    if kind == 3:
        return rng.choice(EMOJI)
    if kind == 4:
        return rng.choice(WHITESPACE)
    if kind == 5:
        return rng.choice(PUNCT)
    if kind == 6:
        return rng.choice(DIGITS)
    if kind == 7:
        return rng.choice(SPECIAL_STRINGS) if rng.random() < 0.7 else rng.choice(SPECIAL_STRINGS)[:-2]
    if kind == 8:
        return rng.choice(CODE)
    w = rng.choice(WORDS)
    r = rng.random()
    return w.upper() if r < 0.15 else w.capitalize() if r < 0.3 else w


def make_string(rng):
    n = rng.choice([1, 1, 2, 3, 4, 6, 8, 12])
    out = []
    for _ in range(n):
        if out and rng.random() < 0.6:
            out.append(rng.choice([" ", " ", " ", "", "\n", "  ", "\t"]))
        out.append(fragment(rng))
    return "".join(out)


def test_strings(seed=1234, n=1200):
    rng = random.Random(seed)
    fixed = [
        "", " ", "  ", "\n", "a", "Hello world", " Hello world", "Hello  world ", "hello\n\nworld\n",
        "I'M SURE IT'S FINE, ISN'T IT? we'Ve, they'LL, she'D", "x'ſ y'S z'K",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
        "<|user|>\nWhat?<|end|>\n", "<s>[INST] hi [/INST] ok </s>", "<unk><unk>", "<|im_start|<|im_end|>>",
        "a <mask> b", "a  <mask>  b", "<mask>", "text[TOOL]text", "[TOOL] [TOOL]", "NEWTOK NEWTOKEN xNEWTOK NEWTOK.",
        "1234567890123", "3.14159265358979", "    ", "\t\t\t", "\r\n\r\n", "a\u0085b", "a\u00a0b", "e\u0301\u0301",
        "👩‍👩‍👧‍👦👩‍👩‍👧‍👦", "🇺🇸🇯🇵", "ﬁ ﬂ ℌ ①", "x" * 3000, "ab" * 1500, "9" * 2000, " " * 500 + "x",
        "\n" * 300, "😀" * 400, "日本語" * 300,
    ]
    out = list(fixed)
    uni_ws = ["\u0085", "\u00a0", "\u3000", "\u2003", "\u2028", "\x0b", "\x1c", "\u180e", " ", "\t"]
    for _ in range(100):
        out.append("".join(rng.choice(uni_ws + ["the", "x", "is", "1", "'s", "'S", "!"]) for _ in range(rng.randrange(2, 9))))
    while len(out) < n - 20:
        out.append(make_string(rng))
    # long mixed strings
    while len(out) < n:
        out.append("".join(make_string(rng) + rng.choice([" ", "\n", ""]) for _ in range(rng.randrange(50, 150))))
    return out


def training_corpus(seed=7, n=6000):
    rng = random.Random(seed)
    lines = [make_string(rng) for _ in range(n)]
    lines += [" ".join(rng.choice(WORDS) for _ in range(20)) for _ in range(2000)]
    lines += SCRIPTS * 20
    # Unicode whitespace in many contexts, so that merges involving it are learned and
    # the regex's notion of \s shows in the ids (Oniguruma: White_Space; PCRE2's own \s
    # would also take U+180E).
    uni_ws = ["\u0085", "\u00a0", "\u3000", "\u2003", "\u2028", "\u202f", "\x0b", "\x1c", "\u180e"]
    for _ in range(3000):
        a, b = rng.choice(uni_ws), rng.choice(uni_ws)
        w = rng.choice(["the", "x", "is", "1"])
        lines.append(rng.choice(["", " ", a]) + a + rng.choice(["", " ", b]) + w + b + rng.choice([" ", "", "\n"]) + w)
    return lines


# ---------------------------------------------------------------- tokenizers


def train_sentencepiece(wd, corpus):
    d = os.path.join(wd, "sp")
    os.makedirs(d, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([l for l in corpus if l.strip()]), model_prefix=os.path.join(d, "tokenizer"),
        vocab_size=2000, model_type="bpe", byte_fallback=True, character_coverage=0.9995,
        user_defined_symbols=["<|user|>", "<|end|>", "<mask>"], control_symbols=["<|im_start|>"],
        num_threads=2, minloglevel=2)
    return d


def save_with_config(tok, d, config):
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(config, f)


def bpe_trainer(vocab_size, special_tokens):
    return trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=special_tokens)


def train_qwen2(wd, corpus):
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(corpus, bpe_trainer(3000, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)])
    tok.add_tokens([AddedToken("[TOOL]", normalized=True, special=False),
                    AddedToken("NEWTOK", single_word=True, normalized=False, special=False)])
    d = os.path.join(wd, "qwen2")
    save_with_config(tok, d, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    # Rewrite the merges in the older "a b" string format (both load in tokenizers).
    path = os.path.join(d, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    tj["model"]["merges"] = [m if isinstance(m, str) else m[0] + " " + m[1] for m in tj["model"]["merges"]]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    return d


def train_llama3(wd, corpus):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.train_from_iterator(corpus, bpe_trainer(3500, specials))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    d = os.path.join(wd, "llama3")
    save_with_config(tok, d, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})
    return d


def train_gpt2(wd, corpus):
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.train_from_iterator(corpus, bpe_trainer(2500, ["<|endoftext|>"]))
    d = os.path.join(wd, "gpt2")
    save_with_config(tok, d, {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"})
    return d


class SpReference:
    """Python reference of cada's sentencepiece rule."""

    def __init__(self, model_dir):
        path = os.path.join(model_dir, "tokenizer.model")
        self.sp = spm.SentencePieceProcessor(model_file=path)
        proto = sentencepiece_model_pb2.ModelProto()
        with open(path, "rb") as f:
            proto.ParseFromString(f.read())
        T = sentencepiece_model_pb2.ModelProto.SentencePiece
        self.atomic = {}
        self.special_ids = set()
        for i, p in enumerate(proto.pieces):
            if p.type in (T.UNKNOWN, T.CONTROL, T.USER_DEFINED):
                self.atomic[p.piece] = i
                if p.type != T.USER_DEFINED:
                    self.special_ids.add(i)
        self.content = {i: s for s, i in self.atomic.items()}
        self.by_first = {}
        for s in sorted(self.atomic, key=len, reverse=True):
            self.by_first.setdefault(s[0], []).append(s)

    def encode(self, text, add_special_tokens=False):
        ids = [self.sp.bos_id()] if add_special_tokens else []
        i = start = 0
        while i < len(text):
            hit = next((s for s in self.by_first.get(text[i], []) if text.startswith(s, i)), None)
            if hit is None:
                i += 1
                continue
            if start < i:
                ids += self.sp.encode(text[start:i])
            ids.append(self.atomic[hit])
            i += len(hit)
            start = i
        if start < len(text):
            ids += self.sp.encode(text[start:])
        return ids

    def decode(self, ids, skip_special_tokens=False):
        out, run = [], []
        for i in ids:
            if i in self.content:
                if run:
                    out.append(self.sp.decode(run))
                    run = []
                if not (skip_special_tokens and i in self.special_ids):
                    out.append(self.content[i])
            else:
                run.append(i)
        if run:
            out.append(self.sp.decode(run))
        return "".join(out)


class AutoTokenizerReference:
    """transformers.AutoTokenizer on a folder written by cada's train_sentencepiece."""

    def __init__(self, model_dir):
        from transformers import AutoTokenizer
        self.tok = AutoTokenizer.from_pretrained(model_dir)

    def encode(self, text, add_special_tokens=False):
        return self.tok.encode(text, add_special_tokens=add_special_tokens)

    def decode(self, ids, skip_special_tokens=False):
        return self.tok.decode(ids, skip_special_tokens=skip_special_tokens)


def train_with_cada(args, wd, corpus):
    path = os.path.join(wd, "cada_corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(l.replace("\n", " ") for l in corpus))
    d = os.path.join(wd, "cada_tiny")
    run_cada(args.cada, ["init-model", "--train-tokenizer", path, "--vocab-size", 1500, "--out", d])
    return d


class HfReference:
    def __init__(self, model_dir):
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))

    def encode(self, text, add_special_tokens=False):
        return self.tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens=False):
        return self.tok.decode(ids, skip_special_tokens=skip_special_tokens)


def short(s, n=120):
    r = repr(s)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(s)


def check_tokenizer(args, report, name, model_dir, ref, strings):
    """Two cada runs: every string encoded (a subset again with add_special_tokens=True, set per
    record), then the reference ids decoded (a subset with skip_special_tokens=True, and id
    prefixes cut inside characters)."""
    wd = os.path.join(args.workdir, "run_" + name.split()[0])
    os.makedirs(wd, exist_ok=True)
    subset = strings[:250]
    inp, out = os.path.join(wd, "in.jsonl"), os.path.join(wd, "ids.jsonl")
    write_jsonl(inp, [{"text": s} for s in strings] + [{"text": s, "add_special_tokens": True} for s in subset])
    t0 = time.time()
    run_cada(args.cada, ["tokenize", "--model", model_dir, "--input", inp, "--out", out])
    t_cada = time.time() - t0
    got = [r["ids"] for r in read_jsonl(out)]
    report.check(name + ": record count", len(got) == len(strings) + len(subset),
                 "%d vs %d" % (len(got), len(strings) + len(subset)))
    refs = [ref.encode(s) for s in strings]
    for s, g, r in zip(strings, got, refs):
        report.check(name + ": encode ids", g == r, "%s\n  cada:   %s\n  python: %s" % (short(s), g[:40], r[:40]))
    for s, g in zip(subset, got[len(strings):]):
        r = ref.encode(s, add_special_tokens=True)
        report.check(name + ": encode ids, add_special_tokens", g == r,
                     "%s\n  cada:   %s\n  python: %s" % (short(s), g[:40], r[:40]))

    # Decoding: the reference ids (all strings), with skip_special_tokens (subset), and prefixes
    # of the ids (byte-level pieces cut in the middle of characters).
    pref = [r[: max(1, len(r) // 2)] for r in refs[:300] if r]
    cases = ([(r, False, "decode") for r in refs] + [(r, True, "decode, skip_special_tokens") for r in refs[:250]] +
             [(p, False, "decode of id prefixes") for p in pref])
    dec_in, dec_out = os.path.join(wd, "dec_in.jsonl"), os.path.join(wd, "dec_out.jsonl")
    write_jsonl(dec_in, [{"ids": ids, "skip_special_tokens": skip} for ids, skip, _ in cases])
    run_cada(args.cada, ["tokenize", "--model", model_dir, "--decode", "--input", dec_in, "--out", dec_out])
    texts = [x["text"] for x in read_jsonl(dec_out)]
    report.check(name + ": decode record count", len(texts) == len(cases), "%d vs %d" % (len(texts), len(cases)))
    for (ids, skip, kind), g in zip(cases, texts):
        want = ref.decode(ids, skip_special_tokens=True) if skip else ref.decode(ids)
        report.check(name + ": " + kind, g == want, "ids %s\n  cada:   %s\n  python: %s" % (ids[:30], short(g), short(want)))
    print("%s: %d strings, %d tokens, cada encode run %.2fs" % (name, len(strings), sum(map(len, refs)), t_cada))


def main():
    args = parse_args(__doc__)
    t0 = time.time()
    corpus = training_corpus()
    strings = test_strings()
    wd = args.workdir
    tokenizers_ = [
        ("sentencepiece", train_sentencepiece(wd, corpus), SpReference),
        ("qwen2-bpe", train_qwen2(wd, corpus), HfReference),
        ("llama3-bpe", train_llama3(wd, corpus), HfReference),
        ("gpt2-bpe", train_gpt2(wd, corpus), HfReference),
        ("cada-trained-sp vs AutoTokenizer", train_with_cada(args, wd, corpus), AutoTokenizerReference),
    ]
    print("trained %d tokenizers in %.1fs" % (len(tokenizers_), time.time() - t0))
    report = Report()
    for name, d, ref_cls in tokenizers_:
        check_tokenizer(args, report, name, d, ref_cls(d), strings)
    print("total %.1fs" % (time.time() - t0))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
