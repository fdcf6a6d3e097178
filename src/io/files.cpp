#include "cada/io/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "cada/util/error.h"

namespace cada::io {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// fsync on a directory makes a rename inside it durable. Failures are ignored:
// some filesystems refuse fsync on directories and the data itself is synced.
void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

std::atomic<uint64_t> g_tmp_counter{0};

}  // namespace

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_dirs(const std::string& path) {
  if (path.empty() || is_directory(path)) return;
  std::string prefix;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    prefix = path.substr(0, next);
    pos = next + 1;
    if (prefix.empty() || prefix == "." || prefix == "..") continue;
    if (::mkdir(prefix.c_str(), 0777) == 0) continue;
    int err = errno;
    if (err == EEXIST) {
      CADA_CHECK(is_directory(prefix), "Cannot create directory ", path, ": ", prefix,
                 " exists and is not a directory.");
      continue;
    }
    CADA_FAIL("Cannot create directory ", path, ": ", errno_text(err), ".");
  }
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) CADA_FAIL("Cannot open ", path, ": ", errno_text(errno), ".");
  struct stat st;
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    CADA_FAIL("Cannot read ", path, ": it is a directory or cannot be inspected.");
  }
  std::string out;
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      CADA_FAIL("Cannot read ", path, ": ", errno_text(err), ".");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void atomic_write_file(const std::string& path, const std::string& content) {
  AtomicFileWriter w(path);
  w.write(content);
  w.commit();
}

void remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    CADA_FAIL("Cannot remove ", path, ": ", errno_text(errno), ".");
  }
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    CADA_FAIL("Cannot remove ", path, ": ", errno_text(errno), ".");
  }
  if (S_ISDIR(st.st_mode)) {
    for (const auto& name : list_dir(path)) remove_tree(path + "/" + name);
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) CADA_FAIL("Cannot remove ", path, ": ", errno_text(errno), ".");
  } else {
    remove_file(path);
  }
}

void rename_path(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    CADA_FAIL("Cannot rename ", from, " to ", to, ": ", errno_text(errno), ".");
}

std::vector<std::string> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) CADA_FAIL("Cannot list directory ", dir, ": ", errno_text(errno), ".");
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  bool a_slash = a.back() == '/';
  bool b_slash = b.front() == '/';
  if (a_slash && b_slash) return a + b.substr(1);
  if (a_slash || b_slash) return a + b;
  return a + "/" + b;
}

// ---------------------------------------------------------------- AtomicFileWriter

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  CADA_CHECK(!path.empty(), "Cannot write a file with an empty path.");
  CADA_CHECK(path.back() != '/', "Cannot write ", path, ": the path names a directory.");
  // An existing device, FIFO or socket (/dev/null, /dev/stdout, a shell's process substitution)
  // is written in place: renaming a file over it would replace the device itself.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) CADA_FAIL("Cannot write ", path, ": ", errno_text(errno), ".");
    return;
  }
  std::string dir = parent_dir(path);
  make_dirs(dir);
  auto stamp = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string tmp = join_path(dir, str_cat(".", base_name(path), ".tmp.", ::getpid(), ".",
                                             g_tmp_counter.fetch_add(1), ".", stamp % 1000003));
    fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) {
      tmp_ = std::move(tmp);
      return;
    }
    if (errno != EEXIST) {
      CADA_FAIL("Cannot write ", path, ": creating a temporary file in ", dir,
                " failed: ", errno_text(errno), ".");
    }
  }
  CADA_FAIL("Cannot write ", path, ": could not find a free temporary file name in ", dir, ".");
}

AtomicFileWriter::~AtomicFileWriter() { abandon(); }

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_(std::exchange(other.tmp_, std::string())),
      fd_(std::exchange(other.fd_, -1)),
      written_(other.written_) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    abandon();
    path_ = std::move(other.path_);
    tmp_ = std::exchange(other.tmp_, std::string());
    fd_ = std::exchange(other.fd_, -1);
    written_ = other.written_;
  }
  return *this;
}

void AtomicFileWriter::abandon() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

void AtomicFileWriter::write(const void* data, size_t n) {
  CADA_CHECK(fd_ >= 0, "Cannot write ", path_, ": the file was already committed or abandoned.");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    ssize_t w = ::write(fd_, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : EIO;
      abandon();
      CADA_FAIL("Cannot write ", path_, ": ", errno_text(err), ".");
    }
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<size_t>(w);
  }
}

void AtomicFileWriter::commit() {
  CADA_CHECK(fd_ >= 0, "Cannot write ", path_, ": the file was already committed or abandoned.");
  if (tmp_.empty()) {  // a device or pipe written in place: nothing to sync or rename
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) CADA_FAIL("Cannot write ", path_, ": close failed: ", errno_text(errno), ".");
    return;
  }
  if (::fsync(fd_) != 0) {
    int err = errno;
    abandon();
    CADA_FAIL("Cannot write ", path_, ": fsync failed: ", errno_text(err), ".");
  }
  if (::close(fd_) != 0) {
    int err = errno;
    fd_ = -1;
    abandon();
    CADA_FAIL("Cannot write ", path_, ": close failed: ", errno_text(err), ".");
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    abandon();
    CADA_FAIL("Cannot write ", path_, ": renaming the temporary file failed: ", errno_text(err),
              ".");
  }
  tmp_.clear();
  fsync_dir(parent_dir(path_));
}

}  // namespace cada::io
