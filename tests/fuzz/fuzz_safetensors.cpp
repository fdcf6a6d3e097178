// Fuzz target: the safetensors reader (include/cada/io/safetensors.h).
//
// Input: a whole safetensors file image (8-byte little-endian header length, JSON header,
// data). It is validated in memory (SafetensorsFile::from_bytes) and, when its size is a
// multiple of 8 (about one input in 8), also through the mmap path (SafetensorsFile::open on a
// scratch file). A file that loads must keep the reader's promises: every tensor's bytes lie
// inside the image and number numel * dtype_size, names() is in data-offset order with the
// tensors contiguous, and writing the tensors back with safetensors_header and reading that
// again gives the same names, dtypes, shapes, bytes and metadata. Rejections (cada::Error) are
// normal.
//
// Seeds: tests/fuzz/corpus/safetensors (made by tests/fuzz/make_corpus.py).
// Run: scripts/fuzz.sh (all targets), or build-fuzz/fuzz_safetensors tests/fuzz/corpus/safetensors
#include <cstring>
#include <exception>

#include "cada/io/safetensors.h"
#include "fuzz_common.h"

namespace {

using cada::io::SafetensorsFile;

std::vector<uint8_t> image(const std::string& header, const std::vector<const cada::io::TensorView*>& order) {
  std::vector<uint8_t> out(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  for (const auto* t : order) out.insert(out.end(), t->data, t->data + t->nbytes);
  return out;
}

void check_loaded(const SafetensorsFile& f, const uint8_t* base, size_t size) {
  size_t total = 0;
  const uint8_t* prev_end = nullptr;
  FUZZ_CHECK(f.names().size() == f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& t = f.tensors()[i];
    FUZZ_CHECK(f.names()[i] == t.name);
    FUZZ_CHECK(&f.get(t.name) == &t);
    FUZZ_CHECK(t.numel() >= 0);
    FUZZ_CHECK(t.nbytes == static_cast<size_t>(t.numel()) * cada::io::dtype_size(t.dtype));
    FUZZ_CHECK(t.data >= base && t.data + t.nbytes <= base + size);
    if (prev_end) FUZZ_CHECK(t.data == prev_end);  // contiguous, in offset order
    prev_end = t.data + t.nbytes;
    volatile uint8_t sink = 0;
    for (size_t k = 0; k < t.nbytes; ++k) sink = sink + t.data[k];  // every byte readable
    total += t.nbytes;
  }
  FUZZ_CHECK(total == f.data_size());
}

void round_trip(const SafetensorsFile& f) {
  std::vector<cada::io::TensorData> tensors;
  for (const auto& t : f.tensors()) tensors.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
  std::vector<size_t> order;
  const std::string header = cada::io::safetensors_header("fuzz", tensors, f.metadata(), &order);
  std::vector<const cada::io::TensorView*> views;
  for (size_t i : order) views.push_back(&f.tensors()[i]);
  auto g = SafetensorsFile::from_bytes(image(header, views), "fuzz-rewritten");
  FUZZ_CHECK(g->metadata() == f.metadata());
  FUZZ_CHECK(g->tensors().size() == f.tensors().size());
  for (const auto& t : f.tensors()) {
    FUZZ_CHECK(g->contains(t.name));
    const auto& u = g->get(t.name);
    FUZZ_CHECK(u.dtype == t.dtype && u.shape == t.shape && u.nbytes == t.nbytes);
    FUZZ_CHECK(t.nbytes == 0 || std::memcmp(u.data, t.data, t.nbytes) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    auto f = SafetensorsFile::from_bytes(bytes, "fuzz");
    // The data section starts after the 8-byte length and the header, at the same offset in
    // the reader's copy of the image as in `data`.
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
    const uint8_t* base = f->tensors().empty() ? nullptr : f->tensors()[0].data - 8 - header_len;
    if (base) check_loaded(*f, base, size);
    FUZZ_CHECK(f->data_size() == size - 8 - header_len);
    try {
      round_trip(*f);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "a loaded file does not survive a rewrite: %s\n", e.what());
      std::abort();
    }
  } catch (const std::exception&) {
  }
  if (size % 8 == 0) {  // the mmap path (open) on a subset of inputs: a file write each
    static const std::string path = cada::fuzz::scratch_dir() + "/model.safetensors";
    cada::fuzz::write_file(path, std::string(bytes.begin(), bytes.end()));
    try {
      auto f = SafetensorsFile::open(path);
      (void)f->tensors();
    } catch (const std::exception&) {
    }
  }
  return 0;
}
