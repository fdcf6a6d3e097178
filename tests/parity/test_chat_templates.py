"""Parity: cada's chat templates against transformers' apply_chat_template.

For each template family this writes a tokenizer folder in --workdir whose
tokenizer_config.json carries the ORIGINAL Jinja chat template of the model family
(fixtures below; for `cada`, the Jinja that `cada tokenize --print-cada-jinja` prints,
i.e. what train_sentencepiece writes), renders several conversations (with/without a
system message, multi-turn, generation prompt on/off) with
`apply_chat_template(..., tokenize=False)` and with `cada tokenize --chat` (the folder's
own template, rendered by cada's Jinja engine), and requires identical prompt strings; the ids must equal
the folder's tokenizer.json encoding of the prompt. Conversations the original template
rejects (roles not alternating, unsupported roles) must make cada fail as well.
"""

import json
import os
import shutil
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

from parity_common import Report, parse_args, read_jsonl, render_chat, run_cada, write_jsonl

# ------------------------------------------------------------------ original templates
# Qwen/Qwen2.5-*-Instruct tokenizer_config.json "chat_template".
QWEN25 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# Qwen/Qwen2-*-Instruct (also Qwen1.5-72B-Chat).
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Generic ChatML (the transformers documentation's example template).
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# meta-llama/Meta-Llama-3-8B-Instruct.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# meta-llama/Llama-3.1-8B-Instruct (the same template ships with Llama-3.3-70B-Instruct).
LLAMA31 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# meta-llama/Llama-2-7b-chat-hf.
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

# mistralai/Mistral-7B-Instruct-v0.2 (current template, with system-message support).
MISTRAL = r"""{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>",
                  "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<s>", "</s>", "<|system|>", "<|user|>",
                  "<|assistant|>", "<|end|>"]

# name -> (jinja, bos, eos)
FAMILIES = {
    "qwen2.5": (QWEN25, None, "<|im_end|>"),
    "qwen2": (QWEN2, None, "<|im_end|>"),
    "chatml": (CHATML, None, "<|im_end|>"),
    "llama3": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    "llama3.1": (LLAMA31, "<|begin_of_text|>", "<|eot_id|>"),
    "llama2": (LLAMA2, "<s>", "</s>"),
    "mistral": (MISTRAL, "<s>", "</s>"),
    "cada": (None, "<s>", "<|end|>"),  # Jinja from `cada tokenize --print-cada-jinja`
}


def m(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = [
    [m("user", "Hello!")],
    [m("system", "You are a careful assistant."), m("user", "How do I boil an egg?")],
    [m("user", "Hi"), m("assistant", "Hello, how can I help?"), m("user", "Tell me a joke.")],
    [m("system", "Be brief."), m("user", "2+2?"), m("assistant", "4"), m("user", "3+3?"), m("assistant", "6")],
    [m("user", "  padded with spaces \n"), m("assistant", "\n\tanswer with whitespace  ")],
    [m("system", "  System with spaces  "), m("user", "Ünïcödé 日本語 😀 <b>tags</b>\n\nnew paragraph")],
    [m("user", "")],
    [m("system", ""), m("user", "empty system")],
    [m("user", "Quote \"this\" and 'that' {{ not jinja }} {% raw %}")],
    [m("user", "first"), m("assistant", "second")],
]
# Conversations only some templates render (others reject them, like the originals).
EXTRA = [
    [m("user", "a"), m("user", "b")],
    [m("assistant", "I start"), m("user", "ok")],
    [m("user", "q"), m("system", "late system"), m("assistant", "a")],
    [m("system", "s1"), m("system", "s2"), m("user", "u")],
    [m("user", "q"), m("assistant", "calling a tool"), m("tool", "result \"1\"\n\tline2 ü \x01"), m("tool", "result 2"), m("user", "thanks")],
]


def build_tokenizer_json(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
                             behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(c["content"] for c in conv) for conv in CONVERSATIONS] * 20 + [
        "system user assistant INST SYS You are a helpful assistant Cutting Knowledge Date"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL_TOKENS,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    tok.save(path)


def make_folder(wd, name, jinja, bos, eos, tokenizer_json):
    d = os.path.join(wd, name)
    os.makedirs(d, exist_ok=True)
    shutil.copy(tokenizer_json, os.path.join(d, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos, "chat_template": jinja}
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    return d


def hf_render(hf, conv, gen):
    try:
        return hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen), None
    except Exception as e:  # the template raised (alternation etc.)
        return None, "%s: %s" % (type(e).__name__, e)


def main():
    args = parse_args(__doc__)
    wd = args.workdir
    report = Report()
    tj = os.path.join(wd, "tokenizer.json")
    build_tokenizer_json(tj)
    fast = Tokenizer.from_file(tj)
    cada_jinja = run_cada(args.cada, ["tokenize", "--print-cada-jinja"]).stdout

    for name, (jinja, bos, eos) in FAMILIES.items():
        if jinja is None:
            jinja = cada_jinja
        d = make_folder(wd, name, jinja, bos, eos, tj)
        hf = AutoTokenizer.from_pretrained(d)
        ok_convs, bad_convs = [], []
        for conv in CONVERSATIONS + EXTRA:
            for gen in (False, True):
                text, err = hf_render(hf, conv, gen)
                (ok_convs if err is None else bad_convs).append((conv, gen, text, err))

        # One cada run over every conversation, the generation prompt set per record; the ones the
        # original template rejects (without a generation prompt) must fail in cada too.
        bad_convs = [b for b in bad_convs if not b[1]]
        cases = ok_convs + bad_convs
        got, proc = render_chat(args.cada, d, [{"messages": c[0], "add_generation_prompt": c[1]} for c in cases], "all")
        if not report.check(name + ": cada run", got is not None, proc.stderr.strip()):
            continue
        report.check(name + ": folder template rendered by the Jinja engine",
                     "chat template: jinja from tokenizer_config.json" in proc.stderr, "stderr: " + proc.stderr.strip())
        for (conv, gen, want, _), rec in zip(ok_convs, got):
            report.check(name + ": prompt == apply_chat_template", rec.get("prompt") == want,
                         "conversation %s gen=%s\n  cada: %r\n  hf:   %r" % (json.dumps(conv, ensure_ascii=False),
                                                                         gen, rec.get("prompt", rec.get("error")), want))
            ids = fast.encode(want, add_special_tokens=False).ids
            report.check(name + ": ids == tokenizer(prompt)", rec.get("ids") == ids,
                         "prompt %r\n  cada: %s\n  hf:   %s" % (want, (rec.get("ids") or [])[:30], ids[:30]))
        for (conv, _, _, err), rec in zip(bad_convs, got[len(ok_convs):]):
            report.check(name + ": rejected like the original", "error" in rec,
                         "conversation %s: hf raised %s but cada rendered %r" % (
                             json.dumps(conv, ensure_ascii=False), err, rec.get("prompt")))
        report.check(name + ": a rejected conversation fails the run", proc.returncode == (1 if bad_convs else 0),
                     "exit %d with %d rejected" % (proc.returncode, len(bad_convs)))

        # Forcing the matching built-in template gives the same prompts.
        gen_convs = [c for c in ok_convs if c[1]]
        inp = os.path.join(d, "convs_gen.jsonl")
        out = os.path.join(d, "named.jsonl")
        write_jsonl(inp, [{"messages": c[0]} for c in gen_convs])
        proc = run_cada(args.cada, ["tokenize", "--model", d, "--chat", "--chat-template", name, "--add-generation-prompt",
                                    "--input", inp, "--out", out], check=False)
        if report.check(name + ": named template run", proc.returncode == 0, proc.stderr.strip()):
            want = [r for r, c in zip(got, ok_convs) if c[1]]
            report.check(name + ": named == detected", read_jsonl(out) == want)

    # An unknown template name is an error listing the valid names.
    proc = run_cada(args.cada, ["tokenize", "--model", os.path.join(wd, "chatml"), "--chat", "--chat-template", "nope",
                                "--text", "hi"], check=False)
    report.check("unknown template name is rejected with the valid names",
                 proc.returncode != 0 and "qwen2.5" in proc.stderr and "llama3" in proc.stderr, proc.stderr)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
