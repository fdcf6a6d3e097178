// glibc's malloc serves large blocks (a batch's activations: hundreds of KiB to tens of MiB) with
// fresh mmap'd pages and returns them to the OS on free, so every forward pass page-faults its
// activations in again (measured: a quarter of a CPU prefill's time on a 5M model). The cada
// binary calls this first: blocks up to 256 MiB come from the heap, and the heap keeps up to
// 1 GiB of freed memory for the next step. A MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ /
// MALLOC_TOP_PAD_ environment variable set by the user wins over the corresponding setting.
#pragma once

namespace cada::util {

void tune_malloc_for_tensors();

}  // namespace cada::util
