// splitmix64's finaliser: a bijection of 64-bit words that decorrelates nearby inputs. The one
// definition behind every derived seed and random stream (sampling streams, data orders, jailbreak
// perturbations, chain seeds); src/kernels/ops_cuda.cu mirrors it on the device.
#pragma once

#include <cstdint>

namespace cada::util {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace cada::util
