// cada tokenize: text -> token ids (optionally through a chat template), or ids -> text.
#include <climits>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_tokenize {

using nlohmann::json;

struct Opts {
  std::string model;
  std::string text;
  std::string input;
  std::string input_format = "auto";
  std::string out;
  bool decode = false;
  bool add_special_tokens = false;
  bool skip_special_tokens = false;
  bool chat = false;
  bool add_generation_prompt = false;
  std::string chat_template;
  bool print_cada_jinja = false;
  std::string errors = "stop";  // stop | record
  bool text_given = false;  // --text was passed (possibly empty)
};

// One input record and where it came from (for error messages).
struct Record {
  json value;  // a string (plain text line / --text) or an object (JSONL)
  std::string where;
  nlohmann::ordered_json ordered;  // the JSONL object with its key order (chat templates print it)
};

std::vector<Record> read_records(const Opts& o) {
  std::vector<Record> recs;
  if (o.text_given) {
    recs.push_back({json(o.text), "--text"});
    return recs;
  }
  bool jsonl = o.input_format == "jsonl";
  if (o.input_format == "auto") {
    auto ends_with = [&](const char* suf) {
      const std::string s(suf);
      return o.input.size() >= s.size() && o.input.compare(o.input.size() - s.size(), s.size(), s) == 0;
    };
    jsonl = ends_with(".jsonl") || ends_with(".json");
  }
  if (jsonl) {
    cada::io::JsonlReader reader(o.input);
    json rec;
    std::vector<size_t> lines;
    while (reader.next(rec)) {
      recs.push_back({rec, o.input + ":" + std::to_string(reader.line()), nullptr});
      lines.push_back(static_cast<size_t>(reader.line()));
    }
    // The same records again with their key order (the reader has validated them).
    const std::string content = cada::io::read_file(o.input);
    std::vector<std::string> text;
    for (size_t start = 0; start <= content.size();) {
      size_t end = content.find('\n', start);
      if (end == std::string::npos) end = content.size();
      text.push_back(content.substr(start, end - start));
      start = end + 1;
    }
    for (size_t k = 0; k < recs.size(); ++k)
      if (lines[k] >= 1 && lines[k] <= text.size())
        recs[k].ordered = nlohmann::ordered_json::parse(text[lines[k] - 1], nullptr, false);
    return recs;
  }
  const std::string content = cada::io::read_file(o.input);
  size_t start = 0, line = 0;
  while (start < content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string s = content.substr(start, end - start);
    if (!s.empty() && s.back() == '\r') s.pop_back();
    recs.push_back({json(s), o.input + ":" + std::to_string(++line)});
    start = end + 1;
  }
  return recs;
}

// Ids to decode; each must lie in the vocabulary (the tokenizers library would skip unknown ids
// silently, which hides a wrong model or a corrupted file).
std::vector<int32_t> parse_ids(const Record& r, int64_t vocab) {
  std::vector<int32_t> ids;
  auto check = [&](long long v, const std::string& text) {
    CADA_CHECK(v >= 0 && v < vocab, r.where, ": token id ", text, " is outside the vocabulary (0 to ", vocab - 1, ")");
  };
  if (r.value.is_string()) {
    std::istringstream in(r.value.get<std::string>());
    std::string tok;
    while (in >> tok) {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(tok, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      CADA_CHECK(used == tok.size(), r.where, ": '", tok, "' is not a token id (expected space-separated integers)");
      check(v, tok);
      ids.push_back(static_cast<int32_t>(v));
    }
    return ids;
  }
  CADA_CHECK(r.value.is_object() && r.value.contains("ids") && r.value["ids"].is_array(), r.where,
             ": expected a JSON object with an 'ids' list");
  for (const auto& e : r.value["ids"]) {
    CADA_CHECK(e.is_number_integer(), r.where, ": 'ids' must contain integers only");
    check(e.is_number_unsigned() && e.get<uint64_t>() > uint64_t(LLONG_MAX) ? -1 : e.get<long long>(), e.dump());
    ids.push_back(static_cast<int32_t>(e.get<long long>()));
  }
  return ids;
}

std::vector<cada::text::Message> parse_messages(const Record& r) {
  std::vector<cada::text::Message> msgs;
  if (r.value.is_string()) {
    msgs.push_back({"user", r.value.get<std::string>()});
    return msgs;
  }
  CADA_CHECK(r.value.is_object(), r.where, ": expected a JSON object");
  if (!r.value.contains("messages") && r.value.contains("text") && r.value["text"].is_string()) {
    msgs.push_back({"user", r.value["text"].get<std::string>()});
    return msgs;
  }
  CADA_CHECK(r.value.contains("messages") && r.value["messages"].is_array(), r.where,
             ": expected a 'messages' list (or a 'text' string, taken as one user turn)");
  for (const auto& m : r.value["messages"]) {
    CADA_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                   m["content"].is_string(),
               r.where, ": each message needs string fields 'role' and 'content'");
    msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return msgs;
}

std::string text_of(const Record& r) {
  if (r.value.is_string()) return r.value.get<std::string>();
  CADA_CHECK(r.value.is_object() && r.value.contains("text") && r.value["text"].is_string(), r.where,
             ": expected a JSON object with a 'text' string");
  return r.value["text"].get<std::string>();
}

// A record's own value of a per-call option (as the keyword arguments of one call to a Hugging
// Face tokenizer), else the command line's.
bool record_flag(const Record& r, const char* key, bool fallback) {
  if (!r.value.is_object() || !r.value.contains(key)) return fallback;
  CADA_CHECK(r.value[key].is_boolean(), r.where, ": '", key, "' must be true or false, got ", r.value[key].dump());
  return r.value[key].get<bool>();
}

// One record's output: {"ids", "prompt"} when encoding (with --chat), {"text"} when decoding.
nlohmann::json process(const Opts& o, const cada::text::Tokenizer& tok, const cada::text::ChatTemplate* tmpl,
                       const Record& r) {
  json out = json::object();
  if (o.decode) {
    out["text"] = tok.decode(parse_ids(r, tok.vocab_size()), record_flag(r, "skip_special_tokens", o.skip_special_tokens));
    return out;
  }
  const bool special = record_flag(r, "add_special_tokens", o.add_special_tokens);
  if (!tmpl) {
    out["ids"] = tok.encode(text_of(r), special);
    return out;
  }
  const bool gen = record_flag(r, "add_generation_prompt", o.add_generation_prompt);
  std::string prompt;
  try {
    // A record's messages go to the template as they are (tool_calls, reasoning_content, ...),
    // with its "tools" and "chat_template_kwargs" (e.g. {"enable_thinking": false}).
    const auto& rec = r.ordered;
    const bool rich = rec.is_object() && rec.contains("messages");
    auto field = [&](const char* k) { return rich && rec.contains(k) ? rec[k] : nlohmann::ordered_json(nullptr); };
    prompt = rich ? tmpl->render_json(rec["messages"], gen, field("tools"), field("chat_template_kwargs"))
                  : tmpl->render(parse_messages(r), gen);
  } catch (const cada::Error& e) {
    CADA_FAIL(r.where, ": ", e.what());
  }
  out["ids"] = tok.encode(prompt, special);
  out["prompt"] = prompt;
  return out;
}

int run(const Opts& o) {
  using namespace cada;
  if (o.print_cada_jinja) {
    std::cout << text::cada_chat_template_jinja();
    return 0;
  }
  CADA_CHECK(!o.model.empty(), "--model is required");
  CADA_CHECK(!(o.text_given && !o.input.empty()), "give either --text or --input, not both");
  CADA_CHECK(o.text_given || !o.input.empty(), "give --text STR or --input FILE");
  CADA_CHECK(!(o.decode && o.chat), "--decode and --chat cannot be combined");

  auto tok = text::load_tokenizer(o.model);
  std::unique_ptr<text::ChatTemplate> tmpl;
  if (o.chat) {
    tmpl = text::load_chat_template(o.model, o.chat_template);
    CADA_INFO("chat template: ", tmpl->origin);
  }
  const std::vector<Record> recs = read_records(o);

  std::unique_ptr<io::JsonlWriter> writer;
  if (!o.out.empty()) writer = std::make_unique<io::JsonlWriter>(o.out, io::JsonlWriter::Mode::kTruncate);
  auto emit = [&](const json& j) {
    if (writer) {
      writer->write(j);
    } else {
      std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
  };

  size_t failed = 0;
  for (const Record& r : recs) {
    json out;
    try {
      out = process(o, *tok, tmpl.get(), r);
    } catch (const cada::Error& e) {
      if (o.errors == "stop") throw;
      out = {{"error", e.what()}};  // --errors record: this record's error in its place
      ++failed;
    }
    if (r.value.is_object() && r.value.contains("id")) out["id"] = r.value["id"];
    emit(out);
  }
  if (writer) {
    writer->flush();
    CADA_INFO("wrote ", writer->records_written(), " records to ", o.out);
  } else {
    std::cout.flush();
  }
  if (failed > 0) {
    CADA_WARN(failed, " of ", recs.size(), " records failed; each has an \"error\" in the output instead");
    return 1;
  }
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "tokenize", "Encode text (or chat conversations) to token ids, or decode ids to text",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto opt = std::make_shared<Opts>();
      sub.add_option("--model", opt->model, "model folder with tokenizer.json or tokenizer.model");
      CLI::Option* text_opt = sub.add_option("--text", opt->text,
                     "one input: text to encode, a user turn with --chat, or space-separated ids with --decode");
      sub.add_option("--input", opt->input,
                     "input file: plain text (one record per line) or JSONL with \"text\", \"messages\" (--chat) "
                     "or \"ids\" (--decode); a JSONL record may set add_special_tokens, add_generation_prompt or "
                     "skip_special_tokens (true / false) for itself");
      sub.add_option("--input-format", opt->input_format, "auto (JSONL for .jsonl/.json files), text or jsonl")
          ->check(CLI::IsMember({"auto", "text", "jsonl"}));
      sub.add_option("--out", opt->out,
                     "output JSONL: {\"ids\": [...]} per record ({\"text\": ...} with --decode); stdout when empty");
      sub.add_flag("--decode", opt->decode, "decode ids to text instead of encoding");
      sub.add_flag("--add-special-tokens", opt->add_special_tokens,
                   "add BOS / the post-processor's tokens when encoding, as HF add_special_tokens=True");
      sub.add_flag("--skip-special-tokens", opt->skip_special_tokens, "drop special tokens when decoding");
      sub.add_flag("--chat", opt->chat,
                   "render each record's messages with the chat template, then encode (outputs \"prompt\" too)");
      sub.add_flag("--add-generation-prompt", opt->add_generation_prompt,
                   "with --chat: end the prompt with the assistant header");
      sub.add_option("--chat-template", opt->chat_template,
                     "chat template name (default: detected from tokenizer_config.json): " + [] {
                       std::string s;
                       for (const auto& n : cada::text::chat_template_names()) s += (s.empty() ? "" : ", ") + n;
                       return s;
                     }());
      sub.add_option("--errors", opt->errors,
                     "a record that cannot be encoded, rendered or decoded: stop (exit 1 at once) or record (write "
                     "{\"error\": ...} in its place, go on, exit 1 at the end)")
          ->check(CLI::IsMember({"stop", "record"}));
      sub.add_flag("--print-cada-jinja", opt->print_cada_jinja,
                   "print the Jinja source of the cada chat template and exit");
      return [opt, text_opt]() -> int {
        opt->text_given = text_opt->count() > 0;
        return run(*opt);
      };
    }});

}  // namespace cmd_tokenize
}  // namespace
