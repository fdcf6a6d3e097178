#include "cada/train/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cada/io/files.h"
#include "cada/util/error.h"
#include "cada/util/launch.h"

namespace cada::train {

namespace {

bool is_run_entry(const std::string& name) {
  return name == "config.json" || name == "metrics.jsonl" || name == "final" || name.rfind("checkpoint-", 0) == 0 ||
         name.rfind("events.out.tfevents.", 0) == 0;
}

std::string join(const std::vector<std::string>& v, size_t most) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < most; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > most) s += ", ...";
  return s;
}

}  // namespace

std::vector<std::string> RunFolder::run_entries(const std::string& dir) {
  std::vector<std::string> out;
  if (!io::is_directory(dir)) return out;
  for (const auto& name : io::list_dir(dir))
    if (is_run_entry(name)) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

RunFolder RunFolder::claim(const std::string& dir, bool resume, bool overwrite) {
  RunFolder f;
  CADA_CHECK(!(resume && overwrite), "--resume continues the run in ", dir, " and --overwrite replaces it: pass one");
  if (launch_from_env().rank != 0) return f;  // the main rank speaks for the run
  io::make_dirs(dir);
  const std::string lock = io::join_path(dir, ".lock");
  f.fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  CADA_CHECK(f.fd_ >= 0, lock, ": cannot open the run's lock file: ", std::strerror(errno));
  if (::flock(f.fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    const ssize_t n = ::pread(f.fd_, buf, sizeof buf - 1, 0);
    const std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
    CADA_FAIL(dir, ": another process (pid ", holder, ") is running in this output_dir; wait for it to finish or "
              "choose another output_dir");
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(f.fd_, 0) != 0 || ::pwrite(f.fd_, pid.data(), pid.size(), 0) < 0) {
    // The lock holds without the pid; only the message of a refused second process is poorer.
  }
  if (resume) return f;
  const auto old = run_entries(dir);
  if (old.empty()) return f;
  CADA_CHECK(overwrite, dir, " already holds a run (", join(old, 4), "); pass --resume to continue it, --overwrite "
             "to replace it, or choose another output_dir");
  for (const auto& name : old) io::remove_tree(io::join_path(dir, name));
  return f;
}

RunFolder& RunFolder::operator=(RunFolder&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

RunFolder::~RunFolder() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace cada::train
