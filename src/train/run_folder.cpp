#include "cada/train/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "cada/io/files.h"
#include "cada/util/error.h"
#include "cada/util/launch.h"
#include "cada/util/strings.h"

namespace cada::train {

namespace {

bool is_run_entry(const std::string& name) {
  return name == "config.json" || name == "metrics.jsonl" || name == "final" || name.rfind("checkpoint-", 0) == 0 ||
         name == "curves.png" || name == "curves.svg" ||
         name.rfind("events.out.tfevents.", 0) == 0;
}

// Flattens objects into dotted keys; lists and scalars are leaves.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else {
    out[prefix] = j;
  }
}

std::string short_dump(const nlohmann::json& j) {
  std::string s = j.is_null() ? "absent" : j.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

}  // namespace

bool RunFolder::resumable_key(const std::string& dotted) {
  static const std::set<std::string> runtime = {"steps", "epochs", "eval_every", "log_every", "tensorboard",
                                                "peak_tflops", "output_dir", "device", "threads", "micro_batch_size",
                                                "batch_rows", "engine", "cuda_graphs"};
  if (dotted.rfind("checkpoint.", 0) == 0 || dotted.rfind("log.", 0) == 0) return true;
  const size_t dot = dotted.rfind('.');
  return runtime.count(dot == std::string::npos ? dotted : dotted.substr(dot + 1)) > 0;
}

std::vector<std::string> RunFolder::meaning_changes(const nlohmann::json& saved, const nlohmann::json& now) {
  std::map<std::string, nlohmann::json> a, b;
  flatten(saved, "", a);
  flatten(now, "", b);
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    const nlohmann::json x = a.count(k) ? a[k] : nlohmann::json(), y = b.count(k) ? b[k] : nlohmann::json();
    if (x == y || resumable_key(k)) continue;
    out.push_back(k + " (" + short_dump(x) + " -> " + short_dump(y) + ")");
  }
  return out;
}

std::vector<std::string> RunFolder::run_entries(const std::string& dir) {
  std::vector<std::string> out;
  if (!io::is_directory(dir)) return out;
  for (const auto& name : io::list_dir(dir))
    if (is_run_entry(name)) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

RunFolder RunFolder::claim(const std::string& dir, bool resume, bool overwrite, const nlohmann::json& config) {
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
  if (resume) {
    const std::string saved_path = io::join_path(dir, "config.json");
    if (config.is_null() || !io::file_exists(saved_path)) return f;
    auto saved = nlohmann::json::parse(io::read_file(saved_path), nullptr, false);
    CADA_CHECK(!saved.is_discarded(), saved_path, ": not valid JSON; the run cannot be resumed safely");
    const auto changes = meaning_changes(saved, config);
    CADA_CHECK(changes.empty(), dir, ": --resume would continue the run under a config that changes its meaning: ",
               util::join_first(changes, 6), "; restore ", changes.size() == 1 ? "that key" : "those keys",
               ", or start a new run (another output_dir or --overwrite)");
    return f;
  }
  const auto old = run_entries(dir);
  if (old.empty()) return f;
  CADA_CHECK(overwrite, dir, " already holds a run (", util::join_first(old, 4), "); pass --resume to continue it, --overwrite "
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
