"""`cada generate` with both schedulers on a tiny model with a trained tokenizer: static batches
and continuous batching (3 slots for 8 prompts x 3 samples, so slots are refilled) give the same
completions for the same seeds, with stop strings, EOS, top-p / top-k and a repetition penalty;
stop strings cut the text before them and end the sample with finish_reason "stop"; a second
run reproduces the first."""
import json

from e2e_common import parse_args, sh, tiny_model


def read(path):
    return [json.loads(l) for l in open(path) if l.strip()]


def main():
    a = parse_args()
    w = a.workdir
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    tiny_model(a.cada, f"{w}/model", seed=3, arch=f"{w}/arch.json")
    prompts = ["How do I bake bread?", "Tell me a story.", "What is a rule?", "Hi", "Explain the sky in detail.",
               "List three fruits.", "Why?", "Describe a cat that likes to sleep on warm stones."]
    with open(f"{w}/in.jsonl", "w") as f:
        for i, p in enumerate(prompts):
            f.write(json.dumps({"id": f"p{i}", "prompt": p}) + "\n")
    failures = []
    settings = {
        "temperature": ["--temperature", 1.0],
        "top_p_top_k_penalty": ["--temperature", 0.8, "--top-p", 0.9, "--top-k", 40, "--repetition-penalty", 1.2],
        "greedy": ["--temperature", 0],
    }
    for name, flags in settings.items():
        outs = {}
        for engine in ("static", "continuous", "continuous-again"):
            out = f"{w}/{name}.{engine}.jsonl"
            sh([a.cada, "generate", "--model", f"{w}/model", "--input", f"{w}/in.jsonl", "--out", out,
                "--engine", engine.split("-")[0], "--batch-size", 3, "--num-return-sequences", 3, "--seed", 11,
                "--max-new-tokens", 40, "--stop", " the", "--stop", ".", *flags])
            outs[engine] = read(out)
        base = outs["static"]
        stopped = 0
        for engine in ("continuous", "continuous-again"):
            for r0, r1 in zip(base, outs[engine]):
                for j, (c0, c1) in enumerate(zip(r0["completions"], r1["completions"])):
                    if c0["ids"] != c1["ids"] or c0["text"] != c1["text"] or c0["finish_reason"] != c1["finish_reason"]:
                        failures.append(f"{name} {engine} {r0['id']} sample {j}: {c1['ids']} != static {c0['ids']}")
                    if any(abs(x - y) > 1e-4 for x, y in zip(c0["logprobs"], c1["logprobs"])):
                        failures.append(f"{name} {engine} {r0['id']} sample {j}: log-probs differ")
        for r in base:
            for c in r["completions"]:
                if " the" in c["text"] or "." in c["text"]:
                    failures.append(f"{name} {r['id']}: a stop string is left in the text {c['text']!r}")
                stopped += c["finish_reason"] == "stop"
        samples = [c["ids"] for r in base for c in r["completions"]]
        if name != "greedy" and len(set(map(tuple, samples))) < len(samples) // 2:
            failures.append(f"{name}: samples of a group barely differ")
        if name != "greedy" and stopped == 0:
            failures.append(f"{name}: no sample met a stop string, so the test shows nothing about them")
        print(f"{name}: {len(base)} prompts x 3 samples, {stopped} stopped, static == continuous")
    if failures:
        print("\n".join(failures[:20]))
        raise SystemExit(1)
    print("both schedulers give the same completions")


if __name__ == "__main__":
    main()
