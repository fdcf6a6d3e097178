// The judge answer cache: an append-only JSONL file shared between processes through flock(2).
#include "cada/reward/judge_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cada/io/files.h"
#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::reward {

using nlohmann::json;

namespace {

// Holds flock(fd, op) for its lifetime.
class FileLock {
 public:
  FileLock(int fd, int op, const std::string& path) : fd_(fd) {
    int rc;
    do rc = ::flock(fd_, op);
    while (rc != 0 && errno == EINTR);
    CADA_CHECK(rc == 0, "judge cache '", path, "': cannot lock the file (", std::strerror(errno), ")");
  }
  ~FileLock() { ::flock(fd_, LOCK_UN); }

 private:
  int fd_;
};

std::string read_all(int fd, const std::string& path) {
  std::string out;
  char buf[1 << 16];
  for (off_t off = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), off);
    if (n < 0 && errno == EINTR) continue;
    CADA_CHECK(n >= 0, "judge cache '", path, "': cannot read the file (", std::strerror(errno), ")");
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
}

bool write_all(int fd, const std::string& s) {
  for (size_t done = 0; done < s.size();) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// With the exclusive lock held: a last line without '\n' can only be a write that died halfway
// (a crash, a full disk); cut it off so that the file stays one answer per line.
bool drop_partial_line(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  off_t end = st.st_size;
  char last = '\n';
  if (end == 0) return true;
  if (::pread(fd, &last, 1, end - 1) != 1) return false;
  if (last == '\n') return true;
  char buf[4096];
  while (end > 0) {  // back to the last '\n', or the start of the file
    const off_t start = std::max<off_t>(0, end - static_cast<off_t>(sizeof(buf)));
    const ssize_t n = ::pread(fd, buf, static_cast<size_t>(end - start), start);
    if (n != end - start) return false;
    for (ssize_t i = n - 1; i >= 0; --i)
      if (buf[i] == '\n') return ::ftruncate(fd, start + i + 1) == 0;
    end = start;
  }
  return ::ftruncate(fd, 0) == 0;
}

}  // namespace

JudgeCache::JudgeCache(const std::string& dir, const std::string& file_name) : path_(io::join_path(dir, file_name)) {
  io::make_dirs(dir);
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  CADA_CHECK(fd_ >= 0, "judge cache '", path_, "': cannot open or create the file (", std::strerror(errno), ")");
  std::string text;
  {
    FileLock lock(fd_, LOCK_SH, path_);  // no half-written line from another process
    text = read_all(fd_, path_);
  }
  size_t bad = 0;
  bool truncated_last = false;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    const bool last_unterminated = end == std::string::npos;
    if (last_unterminated) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("key") && j["key"].is_string() && j.contains("answer") && j["answer"].is_object()) {
      answers_[j["key"].get<std::string>()] = j["answer"];
    } else if (last_unterminated) {
      truncated_last = true;
    } else {
      ++bad;
    }
  }
  if (truncated_last)
    CADA_WARN("judge cache '", path_, "': skipped a truncated last line (an interrupted write); it is asked again");
  if (bad > 0) CADA_WARN("judge cache '", path_, "': skipped ", bad, " garbled line(s)");
}

JudgeCache::~JudgeCache() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<json> JudgeCache::get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(m_);
  auto it = answers_.find(key);
  if (it == answers_.end()) return std::nullopt;
  return it->second;
}

size_t JudgeCache::size() const {
  std::lock_guard<std::mutex> lock(m_);
  return answers_.size();
}

void JudgeCache::put(const std::string& key, const json& answer) {
  std::string line = json{{"key", key}, {"answer", answer}}.dump(-1, ' ', false, json::error_handler_t::replace);
  line += '\n';
  std::lock_guard<std::mutex> lock(m_);
  answers_[key] = answer;
  if (write_failed_) return;
  bool ok = true;
  int err = 0;
  try {
    FileLock flock_(fd_, LOCK_EX, path_);
    ok = drop_partial_line(fd_) && write_all(fd_, line);
    if (!ok) err = errno;
  } catch (const Error&) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    write_failed_ = true;
    CADA_WARN("judge cache '", path_, "': cannot append (", std::strerror(err),
              "); answers are no longer saved to disk in this run");
  }
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CADA_CHECK(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1 && len == 32,
             "SHA-256 failed (OpenSSL)");
  static const char* kHex = "0123456789abcdef";
  std::string out(64, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

std::string default_judge_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/cada/judge";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/cada/judge";
  return "";
}

std::string expand_home(const std::string& path) {
  if (path != "~" && path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  CADA_CHECK(home && *home, "'", path, "' starts with ~, but HOME is not set");
  return std::string(home) + path.substr(1);
}

std::string judge_cache_file_name(const std::string& model) {
  std::string out = model;
  for (auto& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  if (out.empty() || out[0] == '.') out = "_" + out;  // no hidden or empty names
  return out + ".jsonl";
}

}  // namespace cada::reward
