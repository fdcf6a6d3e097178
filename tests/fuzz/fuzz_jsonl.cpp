// Fuzz target: JSON Lines files (include/cada/io/jsonl.h) and the prompt / completion records
// they carry (include/cada/text/records.h).
//
// Input: the bytes of a .jsonl file, written to a scratch folder. Checks:
//   - read_jsonl and JsonlReader (with and without skip_partial_last_line) accept it or throw;
//   - the number of records read while skipping a partial last line equals
//     count_complete_jsonl_records, and truncate_partial_last_line removes exactly the bytes
//     after the last '\n', after which read_jsonl reads those same records;
//   - JsonlWriter writes the records back and read_jsonl returns them unchanged;
//   - each record goes through text::prompt_ids / completion_ids with a small byte-level BPE
//     tokenizer (built in code below) and the `cada` chat template, and the ids decode.
//
// Seeds: tests/fuzz/corpus/jsonl. Run: scripts/fuzz.sh, or build-fuzz/fuzz_jsonl tests/fuzz/corpus/jsonl
#include <nlohmann/json.hpp>

#include <algorithm>
#include <exception>
#include <memory>

#include "cada/io/jsonl.h"
#include "cada/text/chat_template.h"
#include "cada/text/records.h"
#include "cada/text/tokenizer.h"
#include "cada/text/unicode.h"
#include "fuzz_common.h"

namespace {

using nlohmann::json;
namespace io = cada::io;
namespace text = cada::text;

// GPT-2's byte -> code point table, as UTF-8.
std::string byte_char(int b) {
  auto direct = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF); };
  int cp = b;
  if (!direct(b)) {
    int n = 0;
    for (int x = 0; x < b; ++x) n += direct(x) ? 0 : 1;
    cp = 256 + n;
  }
  std::string out;
  text::utf8_append(out, cp);
  return out;
}

// A byte-level BPE tokenizer with the cada chat template's special tokens.
std::unique_ptr<text::Tokenizer> make_tokenizer() {
  json vocab = json::object();
  int next = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = next++;
  const std::string G = byte_char(' ');
  json merges = json::array();
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {G, "w"}, {"o", "r"}, {G + "w", "or"}, {"<", "|"}}) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    merges.push_back(a + " " + b);
  }
  json added = json::array();
  for (const char* t : {"<s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"})
    added.push_back({{"id", next++}, {"content", t}, {"special", true}, {"normalized", false}});
  json tj = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
             {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
             {"decoder", {{"type", "ByteLevel"}}},
             {"added_tokens", added}};
  const std::string dir = cada::fuzz::scratch_dir() + "/tokenizer";
  io::make_dirs(dir);
  cada::fuzz::write_file(dir + "/tokenizer.json", tj.dump());
  cada::fuzz::write_file(dir + "/tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": "<|end|>"})");
  return text::load_tokenizer(dir);
}

// All records of `path` via JsonlReader; nullopt when a line is rejected.
std::optional<std::vector<json>> read_all(const std::string& path, bool skip_partial) {
  try {
    io::JsonlReader r(path, skip_partial);
    std::vector<json> out;
    json j;
    size_t last_line = 0;
    while (r.next(j)) {
      FUZZ_CHECK(r.line() > last_line);
      last_line = r.line();
      out.push_back(std::move(j));
    }
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void use_records(const std::vector<json>& records, const text::Tokenizer& tok, const text::ChatTemplate& tmpl) {
  for (size_t i = 0; i < records.size() && i < 16; ++i) {
    const std::string where = "fuzz.jsonl:" + std::to_string(i + 1);
    for (bool raw : {false, true}) {
      try {
        std::vector<int32_t> ids = text::prompt_ids(records[i], &tok, &tmpl, raw, where);
        (void)tok.decode(ids, false);
        (void)tok.decode(ids, true);
      } catch (const std::exception&) {
      }
    }
    try {
      std::vector<int32_t> ids = text::completion_ids(records[i], &tok, where);
      (void)tok.decode(ids, false);
    } catch (const std::exception&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<text::Tokenizer> tok = make_tokenizer();
  static const std::unique_ptr<text::ChatTemplate> tmpl = text::make_chat_template("cada");
  static const std::string in = cada::fuzz::scratch_dir() + "/in.jsonl";
  static const std::string out = cada::fuzz::scratch_dir() + "/out.jsonl";
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  cada::fuzz::write_file(in, bytes);

  std::vector<json> all;
  try {
    all = io::read_jsonl(in);
  } catch (const std::exception&) {
  }
  const auto complete = read_all(in, /*skip_partial=*/true);
  if (complete) FUZZ_CHECK(complete->size() == io::count_complete_jsonl_records(in));
  const auto full = read_all(in, /*skip_partial=*/false);
  if (full) FUZZ_CHECK(*full == all);

  // Cutting the partial last line leaves what the skipping reader saw.
  const size_t last_nl = bytes.rfind('\n');
  const size_t keep = last_nl == std::string::npos ? 0 : last_nl + 1;
  FUZZ_CHECK(io::truncate_partial_last_line(in) == size - keep);
  if (complete) {
    const auto after = read_all(in, /*skip_partial=*/false);
    FUZZ_CHECK(after && *after == *complete);
  }

  if (full) {
    {
      io::JsonlWriter w(out, io::JsonlWriter::Mode::kTruncate);
      for (const json& r : *full) w.write(r);
      FUZZ_CHECK(w.records_written() == full->size());
    }
    FUZZ_CHECK(io::read_jsonl(out) == *full);
    FUZZ_CHECK(io::count_complete_jsonl_records(out) == full->size());
    use_records(*full, *tok, *tmpl);
  }
  return 0;
}
