// Prompt records (JSONL) to token ids, shared by the CLI and the trainers.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"

namespace cada::text {

// The one parser of a "messages" list (records, generate-chains, `cada serve`): a non-empty
// list of {"role": string, "content": string | [{"type": "text", "text": string}, ...]} (content
// parts, as the OpenAI API sends them, are joined; other part types are refused). Throws
// cada::Error naming `where` and the message's position.
std::vector<Message> parse_messages(const nlohmann::json& messages, const std::string& where);

// Token ids of a record's prompt. Accepted fields, first match wins:
//   "prompt_ids": [int]          used as is;
//   "messages": [{role, content}] rendered with the chat template plus the generation prompt;
//   "prompt": "text"              raw text (with BOS) when raw, else a single user turn.
// tok may be null when every record carries ids. `where` names the record in error messages (e.g. "in.jsonl:3").
std::vector<int32_t> prompt_ids(const nlohmann::json& rec, const Tokenizer* tok,
                                const ChatTemplate* tmpl, bool raw, const std::string& where);

// Ids of "completion_ids" or of the "completion" text (no special tokens added).
std::vector<int32_t> completion_ids(const nlohmann::json& rec, const Tokenizer* tok,
                                    const std::string& where);

// The text side of a model folder: its tokenizer and, when one is named or detected, its chat
// template. With required = false a folder without tokenizer files gives a null tokenizer
// (callers that only see token ids); otherwise that is an error naming the folder.
struct TextSetup {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatTemplate> chat_template;
};
TextSetup load_text(const std::string& model_dir, const std::string& template_override = "", bool required = true);

}  // namespace cada::text
