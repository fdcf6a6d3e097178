#include "cada/dist/comm.h"

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CADA_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef CADA_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::dist {

namespace {

std::string first_line(const std::exception& e) {
  std::string s;
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) s = ce->what_without_backtrace();
  else s = e.what();
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// ---- one process: every collective is the identity
class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  std::string backend() const override { return "none"; }
  void allreduce_sum(std::vector<at::Tensor>&) override {}
  void broadcast(at::Tensor&, int) override {}
  std::vector<std::string> allgather(const std::string& bytes) override { return {bytes}; }
  void barrier() override {}
};

// ---- a c10d process group
class C10dComm final : public Comm {
 public:
  C10dComm(const LaunchInfo& li, const Options& opts) : li_(li), opts_(opts) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(opts.timeout_s * 1000));
    std::string backend = opts.backend;
    const at::Device want = at::Device(opts.device);
    if (backend == "auto") backend = want.is_cuda() ? "nccl" : "gloo";
    CADA_CHECK(backend == "gloo" || backend == "nccl", "CADA_DIST_BACKEND='", backend,
               "' is not one of auto, gloo, nccl");
    guard("rendezvous at " + li.master_addr + ":" + std::to_string(li.master_port), [&] {
      c10d::TCPStoreOptions so;
      so.port = static_cast<uint16_t>(li.master_port);
      so.isServer = li.rank == 0;
      so.numWorkers = li.world;
      so.waitWorkers = true;
      so.timeout = timeout;
      store_ = c10::make_intrusive<c10d::TCPStore>(li.master_addr, so);
    });
    if (backend == "gloo") {
#ifdef CADA_WITH_GLOO
      guard("creating the Gloo process group", [&] {
        auto go = c10d::ProcessGroupGloo::Options::create(timeout);
        // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch.
        const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
        go->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                                : c10d::ProcessGroupGloo::createDefaultDevice());
        pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, li.rank, li.world, go);
      });
      device_ = at::Device(at::kCPU);
#else
      CADA_FAIL("this cada was built without Gloo (install libgloo-dev and rebuild) and cannot run ", li.world,
                " processes on CPU");
#endif
    } else {
#ifdef CADA_WITH_NCCL
      CADA_CHECK(want.is_cuda(), "the NCCL backend needs a CUDA device (train.device), got '", opts.device, "'");
      device_ = want.has_index() ? want : at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(li.local_rank));
      guard("creating the NCCL process group", [&] {
        auto no = c10d::ProcessGroupNCCL::Options::create();
        no->timeout = timeout;
        pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, li.rank, li.world, no);
      });
#else
      CADA_FAIL("this cada was built without NCCL (build with a CUDA libtorch and nvcc) and cannot run ", li.world,
                " processes on CUDA; set CADA_DIST_BACKEND=gloo to communicate through the CPU");
#endif
    }
    backend_ = backend;
  }

  int rank() const override { return li_.rank; }
  int world() const override { return li_.world; }
  std::string backend() const override { return backend_; }

  void allreduce_sum(std::vector<at::Tensor>& tensors) override {
    guard("allreduce", [&] {
      std::vector<at::Tensor> wire(tensors.size());
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      for (size_t i = 0; i < tensors.size(); ++i) {
        wire[i] = tensors[i].to(device_).contiguous();
        std::vector<at::Tensor> one{wire[i]};
        works.push_back(pg_->allreduce(one, c10d::AllreduceOptions{}));
      }
      for (auto& w : works) wait(w);
      for (size_t i = 0; i < tensors.size(); ++i)
        if (!wire[i].is_same(tensors[i])) tensors[i].copy_(wire[i]);
    });
  }

  void broadcast(at::Tensor& tensor, int root) override {
    guard("broadcast", [&] {
      at::Tensor wire = tensor.to(device_).contiguous();
      std::vector<at::Tensor> one{wire};
      c10d::BroadcastOptions bo;
      bo.rootRank = root;
      wait(pg_->broadcast(one, bo));
      if (!wire.is_same(tensor)) tensor.copy_(wire);
    });
  }

  std::vector<std::string> allgather(const std::string& bytes) override {
    std::vector<std::string> out;
    guard("allgather", [&] {
      auto sizes = gather_tensor(at::tensor({static_cast<int64_t>(bytes.size())}, at::kLong));
      int64_t maxlen = 1;
      for (auto& s : sizes) maxlen = std::max(maxlen, s.item<int64_t>());
      auto buf = at::zeros({maxlen}, at::kByte);
      if (!bytes.empty()) std::memcpy(buf.data_ptr<uint8_t>(), bytes.data(), bytes.size());
      auto parts = gather_tensor(buf);
      for (int r = 0; r < li_.world; ++r) {
        auto p = parts[r].cpu().contiguous();
        out.emplace_back(reinterpret_cast<const char*>(p.data_ptr<uint8_t>()),
                         static_cast<size_t>(sizes[r].item<int64_t>()));
      }
    });
    return out;
  }

  void barrier() override {
    // A one-element allreduce: unlike c10d's barrier it needs no device guess under NCCL.
    std::vector<at::Tensor> t{at::zeros({1}, at::kFloat)};
    allreduce_sum(t);
  }

 private:
  std::vector<at::Tensor> gather_tensor(const at::Tensor& t) {
    auto in = t.to(device_).contiguous();
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < li_.world; ++r) outs[0].push_back(at::empty_like(in));
    std::vector<at::Tensor> ins{in};
    wait(pg_->allgather(outs, ins, c10d::AllgatherOptions{}));
    return outs[0];
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& w) {
    w->wait(std::chrono::milliseconds(static_cast<int64_t>(opts_.timeout_s * 1000)));
  }

  template <class F>
  void guard(const std::string& what, F&& f) {
    try {
      f();
    } catch (const cada::Error&) {
      throw;
    } catch (const std::exception& e) {
      CADA_FAIL("rank ", li_.rank, " of ", li_.world, ": ", what, " failed (", first_line(e),
                "); another process has probably exited or stopped responding (timeout ", opts_.timeout_s,
                " s, CADA_DIST_TIMEOUT). Restart all processes with --resume to continue from the last checkpoint");
    }
  }

  LaunchInfo li_;
  Options opts_;
  std::string backend_;
  at::Device device_{at::kCPU};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> pg_;
};

std::mutex g_mu;
std::unique_ptr<Comm> g_comm;

}  // namespace

Options options_from_env() {
  Options o;
  if (const char* b = std::getenv("CADA_DIST_BACKEND"); b && *b) o.backend = b;
  if (const char* t = std::getenv("CADA_DIST_TIMEOUT"); t && *t) {
    char* end = nullptr;
    o.timeout_s = std::strtod(t, &end);
    CADA_CHECK(end && *end == '\0' && o.timeout_s > 0 && std::isfinite(o.timeout_s),
               "environment variable CADA_DIST_TIMEOUT='", t, "' is not a positive number of seconds");
  }
  return o;
}

Comm& init(const LaunchInfo& launch, const Options& opts) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (launch.world <= 1) {
    g_comm = std::make_unique<LocalComm>();
  } else {
    set_log_rank(launch.rank, launch.world);
    g_comm = std::make_unique<C10dComm>(launch, opts);
    CADA_INFO("data parallel: ", launch.world, " processes (", launch.launcher, ", ", g_comm->backend(), ", master ",
              launch.master_addr, ":", launch.master_port, ")");
  }
  return *g_comm;
}

Comm& init_from_env(const std::string& device) {
  {
    std::lock_guard<std::mutex> lk(g_mu);
    if (g_comm) return *g_comm;
  }
  auto opts = options_from_env();
  opts.device = device;
  return init(launch_from_env(), opts);
}

Comm& world() {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_comm) g_comm = std::make_unique<LocalComm>();
  return *g_comm;
}

bool active() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_comm && g_comm->world() > 1;
}

void allreduce_gradients(Comm& comm, const std::vector<at::Tensor>& params, double bucket_mb) {
  if (comm.world() <= 1) return;
  // Buckets of consecutive parameters with the same dtype and device.
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024 * 1024));
  std::vector<std::vector<at::Tensor>> buckets;
  std::vector<at::Tensor> flat;
  int64_t bytes = 0;
  for (const auto& p : params) {
    if (!p.requires_grad()) continue;
    auto& g = p.mutable_grad();
    if (!g.defined()) g = at::zeros_like(p);
    const bool fits = !buckets.empty() && buckets.back().front().scalar_type() == g.scalar_type() &&
                      buckets.back().front().device() == g.device() && bytes + g.nbytes() <= static_cast<size_t>(cap);
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(g);
    bytes += static_cast<int64_t>(g.nbytes());
  }
  for (auto& b : buckets) {
    std::vector<at::Tensor> views;
    for (auto& g : b) views.push_back(g.reshape({-1}));
    flat.push_back(at::cat(views));
  }
  comm.allreduce_sum(flat);
  for (size_t k = 0; k < buckets.size(); ++k) {
    int64_t off = 0;
    for (auto& g : buckets[k]) {
      const int64_t n = g.numel();
      g.copy_(flat[k].narrow(0, off, n).view(g.sizes()));
      off += n;
    }
  }
}

std::vector<double> allreduce_sum(Comm& comm, std::vector<double> values) {
  if (comm.world() <= 1 || values.empty()) return values;
  std::vector<at::Tensor> t{at::tensor(values, at::kDouble)};
  comm.allreduce_sum(t);
  auto c = t[0].contiguous();
  std::memcpy(values.data(), c.data_ptr<double>(), values.size() * sizeof(double));
  return values;
}

double allreduce_sum(Comm& comm, double value) { return allreduce_sum(comm, std::vector<double>{value})[0]; }

std::vector<nlohmann::json> allgather_json(Comm& comm, const nlohmann::json& value) {
  const auto bytes = nlohmann::json::to_msgpack(value);
  std::vector<nlohmann::json> out;
  for (const auto& p : comm.allgather(std::string(bytes.begin(), bytes.end())))
    out.push_back(nlohmann::json::from_msgpack(std::vector<uint8_t>(p.begin(), p.end())));
  return out;
}

void check_same(Comm& comm, const std::string& value, const std::string& what) {
  if (comm.world() <= 1) return;
  auto all = comm.allgather(value);
  for (int r = 1; r < comm.world(); ++r)
    CADA_CHECK(all[r] == all[0], "rank ", r, " has a different ", what, " than rank 0; every process must run the "
               "same command with the same config and data");
}

void check_parameters_agree(Comm& comm, const std::vector<at::Tensor>& params) {
  if (comm.world() <= 1) return;
  std::vector<at::Tensor> sums;
  {
    at::NoGradGuard ng;
    for (const auto& p : params) {
      auto d = p.detach().to(at::kDouble);
      sums.push_back(at::stack({d.sum(), d.pow(2).sum()}));
    }
  }
  auto mine = at::stack(sums).cpu().contiguous();
  const std::string bytes(reinterpret_cast<const char*>(mine.data_ptr<double>()), mine.numel() * sizeof(double));
  auto all = comm.allgather(bytes);
  for (int r = 1; r < comm.world(); ++r) {
    if (all[r] == all[0]) continue;
    size_t t = 0;
    while (t < params.size() && std::memcmp(all[r].data() + 16 * t, all[0].data() + 16 * t, 16) == 0) ++t;
    CADA_FAIL("data parallel: rank ", r, " holds different parameters than rank 0 (tensor ", t,
              "); the ranks diverged, which points at nondeterminism outside the gradient sum");
  }
}

Range shard(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;
  Range r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

}  // namespace cada::dist
