#include "cada/io/jsonl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "cada/io/files.h"
#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::io {
namespace {

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
  });
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string json_problem(const char* what) {
  std::string w = what;
  if (!w.empty() && w[0] == '[') {
    size_t close = w.find("] ");
    if (close != std::string::npos) w = w.substr(close + 2);
  }
  return w;
}

std::string parent_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

// ---------------------------------------------------------------- reading

JsonlReader::JsonlReader(const std::string& path, bool skip_partial_last_line)
    : path_(path), skip_partial_(skip_partial_last_line) {
  CADA_CHECK(!is_directory(path), "Cannot read JSONL file ", path, ": it is a directory.");
  in_.open(path, std::ios::binary);
  CADA_CHECK(in_.is_open(), "Cannot open JSONL file ", path, ": ", std::strerror(errno), ".");
}

bool JsonlReader::next(nlohmann::json& out) {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_no_;
    bool terminated = !in_.eof();
    if (!terminated && skip_partial_) return false;
    if (is_blank(line)) continue;
    if (line.back() == '\r') line.pop_back();
    // nlohmann would stop at a NUL byte and silently ignore the rest.
    CADA_CHECK(line.find('\0') == std::string::npos, path_, ":", line_no_,
               ": invalid JSON (the line contains a NUL byte).");
    try {
      out = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      CADA_FAIL(path_, ":", line_no_, ": invalid JSON (", json_problem(e.what()), ").");
    }
    record_line_ = line_no_;
    return true;
  }
  CADA_CHECK(!in_.bad(), "Cannot read JSONL file ", path_, " after line ", line_no_, ".");
  return false;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  JsonlReader reader(path);
  std::vector<nlohmann::json> out;
  nlohmann::json j;
  while (reader.next(j)) out.push_back(std::move(j));
  return out;
}

size_t count_complete_jsonl_records(const std::string& path) {
  if (!file_exists(path)) return 0;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CADA_CHECK(fd >= 0, "Cannot open JSONL file ", path, ": ", std::strerror(errno), ".");
  size_t count = 0;
  bool nonblank = false;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      CADA_FAIL("Cannot read JSONL file ", path, ": ", std::strerror(err), ".");
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      char c = buf[i];
      if (c == '\n') {
        count += nonblank ? 1 : 0;
        nonblank = false;
      } else if (!(c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v')) {
        nonblank = true;
      }
    }
  }
  ::close(fd);
  return count;
}

size_t truncate_partial_last_line(const std::string& path) {
  if (!file_exists(path)) return 0;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  CADA_CHECK(fd >= 0, "Cannot open JSONL file ", path, ": ", std::strerror(errno), ".");
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    CADA_FAIL("Cannot repair JSONL file ", path, ": it is not a regular file.");
  }
  const off_t size = st.st_size;
  off_t keep = 0;  // bytes up to and including the last '\n'
  char buf[1 << 16];
  off_t end = size;
  while (end > 0) {
    off_t start = std::max<off_t>(0, end - static_cast<off_t>(sizeof(buf)));
    ssize_t n = ::pread(fd, buf, static_cast<size_t>(end - start), start);
    if (n < 0 && errno == EINTR) continue;
    if (n != end - start) {
      ::close(fd);
      CADA_FAIL("Cannot read JSONL file ", path, " while looking for its last line.");
    }
    bool found = false;
    for (ssize_t i = n - 1; i >= 0; --i) {
      if (buf[i] == '\n') {
        keep = start + i + 1;
        found = true;
        break;
      }
    }
    if (found) break;
    end = start;
  }
  if (keep == size) {
    ::close(fd);
    return 0;
  }
  if (::ftruncate(fd, keep) != 0) {
    int err = errno;
    ::close(fd);
    CADA_FAIL("Cannot truncate JSONL file ", path, ": ", std::strerror(err), ".");
  }
  ::fsync(fd);
  ::close(fd);
  return static_cast<size_t>(size - keep);
}

// ---------------------------------------------------------------- writing

JsonlWriter::JsonlWriter(const std::string& path, Mode mode) : path_(path) {
  std::string parent = parent_of(path);
  if (!parent.empty()) make_dirs(parent);
  if (mode == Mode::kAppend) {
    size_t cut = truncate_partial_last_line(path);
    if (cut > 0) {
      CADA_WARN("Dropped a partial last line (", cut, " bytes) from ", path, " before appending.");
    }
  }
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode == Mode::kAppend ? O_APPEND : O_TRUNC);
  fd_ = ::open(path.c_str(), flags, 0666);
  CADA_CHECK(fd_ >= 0, "Cannot open JSONL file ", path, " for writing: ", std::strerror(errno),
             ".");
}

JsonlWriter::~JsonlWriter() {
  if (fd_ >= 0) ::close(fd_);
}

JsonlWriter::JsonlWriter(JsonlWriter&& o) noexcept
    : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), written_(o.written_) {}

JsonlWriter& JsonlWriter::operator=(JsonlWriter&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
    written_ = o.written_;
  }
  return *this;
}

void JsonlWriter::write(const nlohmann::json& record) {
  CADA_CHECK(fd_ >= 0, "Cannot write JSONL file ", path_, ": the writer is closed.");
  std::string s =
      record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const char* p = s.data();
  size_t left = s.size();
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    CADA_CHECK(w > 0, "Cannot write JSONL file ", path_, ": ",
               std::strerror(w < 0 ? errno : EIO), ".");
    p += w;
    left -= static_cast<size_t>(w);
  }
  ++written_;
}

void JsonlWriter::flush() {
  CADA_CHECK(fd_ >= 0, "Cannot flush JSONL file ", path_, ": the writer is closed.");
  // Devices and pipes (/dev/null, /dev/stdout) cannot be synced (EINVAL); there is nothing to keep.
  CADA_CHECK(::fsync(fd_) == 0 || errno == EINVAL || errno == EROFS, "Cannot flush JSONL file ", path_, ": ",
             std::strerror(errno), ".");
}

}  // namespace cada::io
