#include "cada/text/chat_template.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cada/util/error.h"
#include "text_test_util.h"

namespace cada::text {
namespace {

using testing::TempDir;
using testing::write_text;

const std::vector<Message> kSysConv = {
    {"system", "Be brief."}, {"user", "Hi!"}, {"assistant", "Hello."}, {"user", "Bye"}};
const std::vector<Message> kUserOnly = {{"user", "What is 2+2?"}};

std::string render(const std::string& name, const std::vector<Message>& m, bool gen) {
  return make_chat_template(name)->render(m, gen);
}

TEST(ChatTemplate, NamesAreRegistered) {
  const auto names = chat_template_names();
  for (const char* n : {"cada", "chatml", "llama2", "llama3", "llama3.1", "mistral", "qwen2", "qwen2.5"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  for (const auto& n : names) EXPECT_EQ(make_chat_template(n)->name(), n);
}

TEST(ChatTemplate, UnknownNameListsValidOnes) {
  try {
    make_chat_template("vicuna");
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("vicuna"), std::string::npos);
    for (const auto& n : chat_template_names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
}

TEST(ChatTemplate, Chatml) {
  EXPECT_EQ(render("chatml", kUserOnly, true),
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render("chatml", kSysConv, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n");
}

TEST(ChatTemplate, Qwen2DefaultSystem) {
  EXPECT_EQ(render("qwen2", kUserOnly, true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render("qwen2", kSysConv, false), render("chatml", kSysConv, false));
}

TEST(ChatTemplate, Qwen25DefaultSystemAndTools) {
  EXPECT_EQ(render("qwen2.5", kUserOnly, false),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n");
  EXPECT_EQ(render("qwen2.5", kSysConv, true), render("chatml", kSysConv, true));
  std::vector<Message> tools = {{"user", "q"}, {"assistant", "calling"}, {"tool", "r1"}, {"tool", "r2"}};
  EXPECT_EQ(render("qwen2.5", tools, false),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\ncalling<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response>"
            "<|im_end|>\n");
  EXPECT_THROW(render("qwen2.5", {}, true), cada::Error);
}

TEST(ChatTemplate, Llama3TrimsAndAddsBos) {
  EXPECT_EQ(render("llama3", {{"system", "  sys \n"}, {"user", "\tHi "}}, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render("llama3", kUserOnly, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>");
}

TEST(ChatTemplate, Llama31SystemBlock) {
  EXPECT_EQ(render("llama3.1", kUserOnly, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render("llama3.1", {{"system", " S "}, {"user", "u"}}, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nu<|eot_id|>");
}

TEST(ChatTemplate, Llama31ToolResultsAreJsonStrings) {
  EXPECT_EQ(render("llama3.1", {{"user", "q"}, {"tool", "say \"hi\"\n\x01 ü"}}, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
            "<|start_header_id|>ipython<|end_header_id|>\n\n\"say \\\"hi\\\"\\n\\u0001 ü\"<|eot_id|>");
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(render("llama2", kSysConv, true),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Bye [/INST]");
  EXPECT_EQ(render("llama2", {{"user", "  hi  "}}, false), "<s>[INST] hi [/INST]");
  try {
    render("llama2", {{"user", "a"}, {"user", "b"}}, false);
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate"), std::string::npos);
  }
  EXPECT_THROW(render("llama2", {{"assistant", "a"}}, false), cada::Error);
}

TEST(ChatTemplate, Mistral) {
  EXPECT_EQ(render("mistral", kSysConv, true),
            "<s> [INST] Be brief.\n\nHi! [/INST] Hello.</s> [INST] Bye [/INST]");
  EXPECT_EQ(render("mistral", kUserOnly, false), "<s> [INST] What is 2+2? [/INST]");
  EXPECT_THROW(render("mistral", {{"user", "a"}, {"assistant", "b"}, {"assistant", "c"}}, false), cada::Error);
  try {
    render("mistral", {{"user", "a"}, {"system", "b"}}, false);
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Only user and assistant roles are supported"), std::string::npos);
  }
}

TEST(ChatTemplate, Cada) {
  EXPECT_EQ(render("cada", kSysConv, true),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n"
            "<|user|>\nBye<|end|>\n<|assistant|>\n");
  EXPECT_EQ(render("cada", kUserOnly, false), "<|user|>\nWhat is 2+2?<|end|>\n");
  EXPECT_THROW(render("cada", {{"tool", "x"}}, false), cada::Error);
  EXPECT_NE(cada_chat_template_jinja().find("cada chat template"), std::string::npos);
}

// Abbreviated versions of the upstream templates: detection works on signatures.
const char* const kQwen25Jinja =
    "{%- if tools %}...{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
    "messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by "
    "Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}";
const char* const kQwen2Jinja =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt "
    "%}{{ '<|im_start|>assistant\n' }}{% endif %}";
const char* const kChatmlJinja =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const char* const kLlama3Jinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}";
const char* const kLlama31Jinja =
    "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
const char* const kLlama2Jinja =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}<<SYS>>";
const char* const kMistralJinja =
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- endif %}"
    "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}";

TEST(ChatTemplate, DetectFromJinja) {
  EXPECT_EQ(detect_chat_template_from_jinja(kQwen25Jinja), "qwen2.5");
  EXPECT_EQ(detect_chat_template_from_jinja(kQwen2Jinja), "qwen2");
  EXPECT_EQ(detect_chat_template_from_jinja(kChatmlJinja), "chatml");
  EXPECT_EQ(detect_chat_template_from_jinja(kLlama3Jinja), "llama3");
  EXPECT_EQ(detect_chat_template_from_jinja(kLlama31Jinja), "llama3.1");
  EXPECT_EQ(detect_chat_template_from_jinja(kLlama2Jinja), "llama2");
  EXPECT_EQ(detect_chat_template_from_jinja(kMistralJinja), "mistral");
  EXPECT_EQ(detect_chat_template_from_jinja(cada_chat_template_jinja()), "cada");
  EXPECT_EQ(detect_chat_template_from_jinja(""), "");
  EXPECT_EQ(detect_chat_template_from_jinja("{{ messages[0]['content'] }}"), "");
  // The original Mistral template without system support renders differently: not guessed.
  EXPECT_EQ(detect_chat_template_from_jinja("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
                                            "message['content'] + ' [/INST]' }}{% endfor %}"),
            "");
}

TEST(ChatTemplate, DetectFromFolder) {
  TempDir dir;
  EXPECT_EQ(detect_chat_template(dir.path()), "");
  nlohmann::json cfg = {{"chat_template", kLlama3Jinja}, {"bos_token", "<|begin_of_text|>"}};
  write_text(dir.file("tokenizer_config.json"), cfg.dump());
  EXPECT_EQ(detect_chat_template(dir.path()), "llama3");
  // A list of named templates: the default one counts.
  cfg["chat_template"] = nlohmann::json::array(
      {{{"name", "tool_use"}, {"template", kQwen25Jinja}}, {{"name", "default"}, {"template", kMistralJinja}}});
  write_text(dir.file("tokenizer_config.json"), cfg.dump());
  EXPECT_EQ(detect_chat_template(dir.path()), "mistral");
  // chat_template.jinja (transformers >= 4.43 writes it) wins.
  write_text(dir.file("chat_template.jinja"), kQwen25Jinja);
  EXPECT_EQ(detect_chat_template(dir.path()), "qwen2.5");
  // A template no built-in matches is still a template (rendered by the Jinja engine).
  write_text(dir.file("chat_template.jinja"), "{{ messages[0]['content'] }}");
  EXPECT_EQ(detect_chat_template(dir.path()), "jinja");
}

// meta-llama/Llama-2-7b-chat-hf's template, as published.
const char* const kLlama2RealJinja =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] "
    "== 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

TEST(ChatTemplate, LoadUsesOverrideThenDetectionAndFolderTokens) {
  TempDir dir;
  // Nothing to detect: the error names the folder and the valid names.
  try {
    load_chat_template(dir.path());
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir.path()), std::string::npos) << msg;
    EXPECT_NE(msg.find("qwen2.5"), std::string::npos) << msg;
  }
  EXPECT_EQ(load_chat_template(dir.path(), "chatml")->name(), "chatml");

  nlohmann::json cfg = {{"chat_template", kLlama2RealJinja}, {"bos_token", {{"content", "<BOS>"}}}, {"eos_token", "<EOS>"}};
  write_text(dir.file("tokenizer_config.json"), cfg.dump());
  auto t = load_chat_template(dir.path());
  EXPECT_EQ(t->name(), "jinja");  // the folder's own template, through the Jinja engine
  EXPECT_EQ(t->origin, "jinja from tokenizer_config.json");
  EXPECT_EQ(t->render({{"user", "a"}, {"assistant", "b"}}, false), "<BOS>[INST] a [/INST] b <EOS>");
  EXPECT_EQ(t->render({{"user", "a"}, {"assistant", "b"}}, false),
            load_chat_template(dir.path(), "llama2")->render({{"user", "a"}, {"assistant", "b"}}, false));
  EXPECT_EQ(load_chat_template(dir.path(), "mistral")->name(), "mistral");
  EXPECT_EQ(load_chat_template(dir.path(), "mistral")->origin, "built-in mistral (forced)");
  EXPECT_THROW(load_chat_template(dir.path(), "nope"), cada::Error);
  EXPECT_THROW(load_chat_template(dir.file("missing")), cada::Error);
}

TEST(ChatTemplate, JinjaFolderTemplateWithToolsKwargsAndToolUseEntry) {
  TempDir dir;
  const std::string plain = "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
                            "{% if tools is not none %}TOOLS{% endif %}{% if add_generation_prompt %}>{% endif %}";
  const std::string tooled = "{{ tools | tojson }}|{{ messages[0].tool_calls[0].function.arguments | tojson }}"
                             "|{{ flag }}|{{ pad_token }}";
  nlohmann::ordered_json cfg = {{"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}}},
                                {"pad_token", "<pad>"},
                                {"chat_template", nlohmann::ordered_json::array(
                                                      {{{"name", "default"}, {"template", plain}},
                                                       {{"name", "tool_use"}, {"template", tooled}}})}};
  write_text(dir.file("tokenizer_config.json"), cfg.dump());
  auto t = load_chat_template(dir.path());
  EXPECT_EQ(t->render({{"user", "hi"}}, true), "<s>[user:hi]>");
  const auto msgs = nlohmann::ordered_json::parse(
      R"([{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {"z": 1, "a": 2}}}]}])");
  const auto tools = nlohmann::ordered_json::parse(R"([{"name": "f", "b": 1, "a": 2}])");
  EXPECT_EQ(t->render_json(msgs, false, tools, {{"flag", true}}),
            "[{\"name\": \"f\", \"b\": 1, \"a\": 2}]|{\"z\": 1, \"a\": 2}|True|<pad>");
  // A syntax error names the file and the template line.
  write_text(dir.file("chat_template.jinja"), "ok\n{% if %}");
  try {
    load_chat_template(dir.path());
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("chat_template.jinja: chat template line 2"), std::string::npos) << msg;
  }
  // The built-in templates take no tools.
  EXPECT_THROW(load_chat_template(dir.path(), "chatml")->render_json(msgs, false, tools, nullptr), cada::Error);
}

}  // namespace
}  // namespace cada::text
