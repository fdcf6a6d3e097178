// An on-disk cache of remote judge answers, so that re-judging old generations sends nothing.
//
// One append-only JSONL file per judge model, one line per answer:
//   {"key": "<sha256 hex of the request>", "answer": {...}}
// The key hashes the endpoint path and the canonical JSON request body (model, messages or
// prompt, sampling and log-prob parameters), so any change of template, system prompt,
// parameters or request kind misses. Lines are appended under an exclusive flock(2) as each
// answer arrives, so several processes (data-parallel ranks, parallel runs) share one file and an
// aborted run keeps what it got. Loading never fails on content: a truncated last line (a crash
// mid-write) or a garbled line is skipped with a warning, and the next append first cuts the
// truncated line off. This is the one file in cada that is appended to rather than written
// atomically: a write that dies halfway loses at most that line.
#pragma once

#include <nlohmann/json.hpp>

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace cada::reward {

class JudgeCache {
 public:
  // Opens (creating the folder and the file) <dir>/<file_name> and reads every complete line;
  // throws cada::Error naming the path when the folder or file cannot be created or read.
  JudgeCache(const std::string& dir, const std::string& file_name);
  ~JudgeCache();
  JudgeCache(const JudgeCache&) = delete;
  JudgeCache& operator=(const JudgeCache&) = delete;

  // The answer stored under `key`, if any (read at opening or put since).
  std::optional<nlohmann::json> get(const std::string& key) const;
  // Stores and appends one line. Thread-safe. A failed write (full disk) is a warning, once:
  // the answer is still kept in memory.
  void put(const std::string& key, const nlohmann::json& answer);
  size_t size() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool write_failed_ = false;
  mutable std::mutex m_;
  std::unordered_map<std::string, nlohmann::json> answers_;
};

// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256_hex(const std::string& data);

// $XDG_CACHE_HOME/cada/judge, else $HOME/.cache/cada/judge; "" when neither is set.
std::string default_judge_cache_dir();
// "~" or "~/..." with $HOME in front (as a shell would expand it); other paths unchanged. Throws
// cada::Error when HOME is not set.
std::string expand_home(const std::string& path);

// The cache file of a judge model: its name with characters other than letters, digits, '.',
// '_' and '-' replaced by '_', plus ".jsonl" ("meta-llama/Llama-Guard-3-8B" ->
// "meta-llama_Llama-Guard-3-8B.jsonl").
std::string judge_cache_file_name(const std::string& model);

}  // namespace cada::reward
