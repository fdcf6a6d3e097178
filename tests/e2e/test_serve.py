"""`cada serve` as a real process on loopback, serving a tiny model:

- the official `openai` client lists the model and gets chat and text completions, with log-probs
  and top log-probs, n samples, several prompts at once and streaming;
- 64 concurrent requests all return exactly what `cada generate` gives for the same prompts and
  seeds (text, token log-probs, finish reasons), and the engine batched them together;
- a streamed answer's pieces join to the non-streamed text, also with stop strings;
- malformed JSON, an oversized body, an unknown model, an unknown argument, a prompt beyond the
  context and a missing route get 4xx errors in OpenAI's shape, and the server keeps serving;
- SIGTERM drains: requests in flight finish, new ones get 503, the server exits 0;
- with --api-key-env, requests without the key get 401."""
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from e2e_common import parse_args, sh, tiny_model
from serve_common import Served

PROMPTS = ["How do I bake bread?", "Tell me a story.", "What is a rule?", "Hi", "Explain the sky in detail.",
           "List three fruits.", "Why?", "Describe a cat that likes to sleep on warm stones."]


def check(cond, what, failures):
    if not cond:
        failures.append(what)


def reference(a, w, model):
    """`cada generate` on 64 (prompt, seed) records: the answers the server must reproduce."""
    recs = [{"prompt": PROMPTS[i % len(PROMPTS)], "seed": 1000 + i} for i in range(64)]
    with open(f"{w}/ref_in.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    sh([a.cada, "generate", "--model", model, "--input", f"{w}/ref_in.jsonl", "--out", f"{w}/ref.jsonl",
        "--max-new-tokens", 24, "--temperature", 1.0, "--top-p", 0.95])
    return recs, [json.loads(l) for l in open(f"{w}/ref.jsonl")]


def concurrent_equals_generate(srv, client, recs, ref, failures):
    before = srv.get("/stats")[1]

    def one(i):
        return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": recs[i]["prompt"]}],
                                              max_tokens=24, temperature=1.0, top_p=0.95, seed=recs[i]["seed"],
                                              logprobs=True)
    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(64)))
    wrong = 0
    for i, ans in enumerate(answers):
        want = ref[i]["completions"][0]
        got = ans.choices[0]
        lps = [t.logprob for t in got.logprobs.content]
        same = (got.message.content == want["text"] and got.finish_reason == want["finish_reason"]
                and len(lps) == len(want["logprobs"]) and all(abs(x - y) < 1e-4 for x, y in zip(lps, want["logprobs"])))
        wrong += not same
        if not same and wrong <= 3:
            failures.append(f"request {i}: {got.message.content!r} ({got.finish_reason}) != generate's "
                            f"{want['text']!r} ({want['finish_reason']})")
        check(ans.usage.completion_tokens == len(want["ids"]), f"request {i}: usage {ans.usage}", failures)
    after = srv.get("/stats")[1]
    calls = after["engine_calls"] - before["engine_calls"]
    check(calls < 64, f"64 concurrent requests took {calls} engine calls: they were not batched", failures)
    print(f"64 concurrent requests: {64 - wrong} equal `cada generate`'s output, in {calls} engine calls")


def client_features(client, failures):
    models = [m.id for m in client.models.list().data]
    check(models == ["tiny"], f"models.list() gave {models}", failures)
    # greedy, n samples, top log-probs
    r = client.chat.completions.create(model="tiny", messages=[{"role": "system", "content": "Be brief."},
                                                               {"role": "user", "content": "Hi"}],
                                       max_tokens=8, temperature=0, n=3, logprobs=True, top_logprobs=4)
    texts = [c.message.content for c in r.choices]
    check(len(texts) == 3 and len(set(texts)) == 1, f"greedy n=3 gave different texts {texts}", failures)
    for t in r.choices[0].logprobs.content:
        tops = t.top_logprobs
        check(len(tops) == 4 and abs(tops[0].logprob - t.logprob) < 1e-5,
              f"greedy: the chosen token is not the most likely of the top log-probs ({t})", failures)
        check(all(tops[k].logprob >= tops[k + 1].logprob for k in range(3)), "top log-probs not sorted", failures)
    # text completions: two prompts x two samples, legacy log-probs
    c = client.completions.create(model="tiny", prompt=["The cat", "A rule"], max_tokens=6, n=2, seed=5, logprobs=2)
    check([ch.index for ch in c.choices] == [0, 1, 2, 3], f"completion indices {[ch.index for ch in c.choices]}",
          failures)
    lp = c.choices[0].logprobs
    check(len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) and
          all(1 <= len(d) <= 2 for d in lp.top_logprobs), f"legacy log-probs malformed: {lp}", failures)
    c2 = client.completions.create(model="tiny", prompt=["The cat", "A rule"], max_tokens=6, n=2, seed=5)
    check([x.text for x in c.choices] == [x.text for x in c2.choices], "the same seed gave different texts", failures)
    print("openai client: models, chat (system turn, n, top log-probs), completions (several prompts, log-probs)")


def streaming(client, failures):
    for stop in (None, [" the", "."]):
        kw = dict(model="tiny", messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=40,
                  temperature=1.0, seed=77, stop=stop)
        whole = client.chat.completions.create(**kw).choices[0]
        pieces, finish, roles = [], None, 0
        for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw):
            if chunk.usage is not None:
                check(chunk.usage.completion_tokens > 0, "stream usage", failures)
                continue
            d = chunk.choices[0].delta
            roles += d.role == "assistant"
            pieces.append(d.content or "")
            finish = chunk.choices[0].finish_reason or finish
        check("".join(pieces) == whole.message.content,
              f"stream (stop={stop}) joined {''.join(pieces)!r} != {whole.message.content!r}", failures)
        check(finish == whole.finish_reason and roles == 1, f"stream finish {finish}, roles {roles}", failures)
        check(len(pieces) > 3, f"stream (stop={stop}) came in {len(pieces)} pieces only", failures)
    text = "".join(ch.choices[0].text for ch in client.completions.create(model="tiny", prompt="The cat", max_tokens=12,
                                                                          seed=3, stream=True) if ch.choices)
    whole = client.completions.create(model="tiny", prompt="The cat", max_tokens=12, seed=3).choices[0].text
    check(text == whole, f"completions stream {text!r} != {whole!r}", failures)
    print("streaming: the pieces join to the whole answer (with and without stop strings)")


def bad_requests(srv, failures):
    ok = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    cases = [
        ("malformed JSON", dict(raw=b'{"model": "tiny", "messages": ['), 400),
        ("oversized body", dict(raw=json.dumps({**ok, "user": "x" * 20000}).encode()), 413),
        ("unknown model", dict(body={**ok, "model": "gpt-4"}), 404),
        ("unknown argument", dict(body={**ok, "temprature": 0.5}), 400),
        ("wrong type", dict(body={**ok, "max_tokens": "many"}), 400),
        ("bad message", dict(body={**ok, "messages": [{"role": "user"}]}), 400),
        ("beyond the context", dict(body={**ok, "max_tokens": 100000}), 400),
        ("unsupported", dict(body={**ok, "tools": [{"type": "function"}]}), 400),
        ("empty body", dict(raw=b""), 400),
    ]
    for name, kw, status in cases:
        got, body = srv.request("POST", "/v1/chat/completions", **kw)
        err = body.get("error", {}) if isinstance(body, dict) else {}
        check(got == status and isinstance(err.get("message"), str) and err.get("type"),
              f"{name}: {got} {body} (expected {status} with an OpenAI error body)", failures)
        check(srv.post("/v1/chat/completions", ok)[0] == 200, f"the server stopped serving after: {name}", failures)
    got, body = srv.get("/v1/nothing")
    check(got == 404 and "error" in body, f"missing route: {got} {body}", failures)
    print(f"{len(cases) + 1} bad requests answered 4xx in OpenAI's shape; the server kept serving")


def drain(srv, failures):
    """8 requests x 16 samples x 250 tokens keep the engine busy for a few seconds."""
    results = {}

    def long(i):
        results[i] = srv.post("/v1/completions", {"model": "tiny", "prompt": "The cat", "max_tokens": 250, "n": 16,
                                                  "ignore_eos": True, "seed": i})
    threads = [threading.Thread(target=long, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    while srv.get("/stats")[1]["in_flight"] < 8:
        time.sleep(0.01)
    srv.proc.send_signal(15)
    time.sleep(0.1)
    late = srv.post("/v1/completions", {"model": "tiny", "prompt": "Hi", "max_tokens": 2})
    health = srv.get("/health")
    for t in threads:
        t.join()
    out = srv.stop(expect_rc=0, signal_sent=True)
    check(late[0] == 503 and "shutting down" in late[1]["error"]["message"], f"a request during the drain: {late}",
          failures)
    check(health[0] == 503 and health[1]["status"] == "draining", f"/health during the drain: {health}", failures)
    for i in range(8):
        status, body = results[i]
        check(status == 200 and body["usage"]["completion_tokens"] == 16 * 250,
              f"request {i} in flight at SIGTERM: {status} {str(body)[:200]}", failures)
    check("draining 8 request(s)" in out and "stopped after" in out, f"drain log:\n{out[-800:]}", failures)
    print("SIGTERM: 8 requests in flight finished, new ones got 503, /health said draining, exit 0")


def api_key(a, model, w, failures):
    """--api-key-env: requests without the key get 401; the openai client with it gets answers."""
    srv = Served(a.cada, model, w, name="keyed", extra=["--api-key-env", "CADA_TEST_KEY"],
                 env={**os.environ, "CADA_TEST_KEY": "s3cret"})
    try:
        status, body = srv.post("/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]})
        check(status == 401 and body["error"]["type"] == "authentication_error", f"no key: {status} {body}", failures)
        client = openai.OpenAI(base_url=srv.url, api_key="s3cret", max_retries=0)
        r = client.completions.create(model="tiny", prompt="Hi", max_tokens=3)
        check(len(r.choices) == 1, "the key did not let the client in", failures)
    finally:
        srv.stop()
    print("--api-key-env: 401 without the key, answers with it")


def main():
    a = parse_args()
    w = a.workdir
    json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": True},
              open(f"{w}/arch.json", "w"))
    model = tiny_model(a.cada, f"{w}/tiny", seed=3, arch=f"{w}/arch.json")
    recs, ref = reference(a, w, model)
    srv = Served(a.cada, model, w, extra=["--max-body-bytes", 8192, "--max-logprobs", 8])
    failures = []
    try:
        client = openai.OpenAI(base_url=srv.url, api_key="unused", max_retries=0, timeout=120)
        client_features(client, failures)
        concurrent_equals_generate(srv, client, recs, ref, failures)
        streaming(client, failures)
        bad_requests(srv, failures)
        drain(srv, failures)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
    api_key(a, model, w, failures)
    if failures:
        print("\n".join(failures[:30]))
        raise SystemExit(1)
    print("cada serve: OpenAI-compatible on loopback")


if __name__ == "__main__":
    main()
