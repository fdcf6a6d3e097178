"""Fuzz parity: random conversations through every family's chat template, cada against transformers.

A seeded generator draws conversations (any order of system / user / assistant / tool
turns, empty or missing content, assistant tool calls with string or object arguments,
reasoning_content, and contents mixing unicode, whitespace runs, <think> tags and
Jinja-like text such as "{{ x }}" or "{% if %}"), random tool lists, generation prompt on
or off and enable_thinking on, off or absent. Each family's folder (see
test_chat_templates_jinja.py) renders them with `cada tokenize --chat` and with
apply_chat_template: the prompts and ids must be identical, and where the template raises
(roles not alternating, a tool call id of the wrong length, ...) cada must fail as well.
"""

import os
import random
import sys

from parity_common import Report, parse_args, run_cada
import test_chat_templates_jinja as J

PIECES = ["Hello", "¿Qué tal?", "日本語", "😀", "Zürich", " ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u2028",
          "{{ x }}", "{% if true %}", "{# c #}", "<think>", "</think>", "<tool_call>", "[INST]", "<|im_end|>",
          "'quoted'", "\"dq\"", "\\", "a,b", "1.5", "None", "-}}"]


def text(rng):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))


def tool_call(rng):
    args = {"city": text(rng), "n": rng.choice([1, 2.5, -3, True, None])}
    call = {"id": rng.choice(["call12345", "abcdefghi", "short"]), "type": "function",
            "function": {"name": rng.choice(["get_weather", "now"]),
                         "arguments": args if rng.random() < 0.6 else J.json.dumps(args, ensure_ascii=False)}}
    return call


def message(rng):
    role = rng.choice(["system", "user", "user", "assistant", "assistant", "tool"])
    msg = {"role": role}
    r = rng.random()
    msg["content"] = text(rng) if r < 0.85 else ("" if r < 0.95 else None)
    if role == "assistant" and rng.random() < 0.25:
        msg["tool_calls"] = [tool_call(rng) for _ in range(rng.randint(1, 2))]
    if role == "assistant" and rng.random() < 0.2:
        msg["reasoning_content"] = text(rng)
    if role == "tool" and rng.random() < 0.7:
        msg["tool_call_id"] = rng.choice(["call12345", "abcdefghi", "x"])
    if msg["content"] is None:
        del msg["content"]
    return msg


def conversation(rng):
    msgs = []
    if rng.random() < 0.4:
        msgs.append({"role": "system", "content": text(rng)})
    if rng.random() < 0.5:  # mostly well-formed: alternating user / assistant
        for k in range(rng.randint(1, 5)):
            msgs.append({"role": "user" if k % 2 == 0 else "assistant", "content": text(rng)})
    else:
        msgs += [message(rng) for _ in range(rng.randint(1, 5))]
    return msgs


def main():
    args = parse_args(__doc__)
    wd = args.workdir
    report = Report()
    rng = random.Random(1234)
    tj = os.path.join(wd, "tokenizer.json")
    J.build_tokenizer_json(tj)
    cada_jinja = run_cada(args.cada, ["tokenize", "--print-cada-jinja"]).stdout
    total = 0
    for name, fam in J.families(cada_jinja).items():
        d = J.make_folder(wd, name, fam, tj)
        cases = []
        for _ in range(30):
            c = {"messages": conversation(rng), "gen": rng.random() < 0.5}
            if fam.get("tools") and rng.random() < 0.4:
                c["tools"] = J.TOOLS[: rng.randint(1, 2)]
            if rng.random() < 0.5:
                c["kwargs"] = {"enable_thinking": rng.random() < 0.5}
            cases.append(c)
        n_good, n_bad, _ = J.compare_family(report, args.cada, name, d, cases)
        total += len(cases)
        print("%-13s %3d rendered, %3d rejected by the template" % (name, n_good, n_bad))
    print("%d random conversations" % total)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
