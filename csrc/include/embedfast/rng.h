// Counter-based random numbers shared by every backend (CPU kernels now, CUDA/Triton later).
//
// The generator is SplitMix64 (Steele, Lea, Flood 2014) used as a pure function of a 64-bit key and a counter:
//     draw(key, k) = mix64(key + (k + 1) * kGolden)          k = 0, 1, 2, ...
//     mix64(z): z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; z ^ (z >> 31)
// A stream's key comes from (seed, chunk, part):
//     stream_key(seed, chunk, part) = mix64(mix64(seed ^ 0x5851F42D4C957F2D) ^ (chunk * kC1) ^ (part * kC2))
// Everything is unsigned 64-bit arithmetic modulo 2^64, so a reference written in any language (the tests
// re-implement it in plain Python) replays exactly the same draws. Because a draw is a function of its counter,
// a GPU thread can jump to any position of a stream without generating what comes before.
#pragma once

#include <cstdint>

#include "embedfast/hostdevice.h"

namespace embedfast {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kStreamC1 = 0xD1B54A32D192ED03ull;
constexpr uint64_t kStreamC2 = 0x8CB92BA72F3D8DD7ull;
constexpr uint64_t kSeedSalt = 0x5851F42D4C957F2Dull;

EMBEDFAST_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

EMBEDFAST_HD uint64_t stream_key(uint64_t seed, uint64_t chunk, uint64_t part) {
  return mix64(mix64(seed ^ kSeedSalt) ^ (chunk * kStreamC1) ^ (part * kStreamC2));
}

// draw(key, k) itself: the k-th (0-based) draw of the stream `key`, without generating the ones before it.
EMBEDFAST_HD uint64_t draw_at(uint64_t key, uint64_t k) { return mix64(key + (k + 1) * kGolden); }

// A sequential view of one stream: the k-th call of next() returns draw(key, k).
struct CounterRng {
  uint64_t state;  // key + k * kGolden
  EMBEDFAST_HD explicit CounterRng(uint64_t key) : state(key) {}
  EMBEDFAST_HD uint64_t next() {
    state += kGolden;
    return mix64(state);
  }
  // Uniform double in [0, 1) from the top 53 bits.
  EMBEDFAST_HD double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  // Integer in [0, n) by multiply-shift on the top 32 bits (n < 2^32).
  EMBEDFAST_HD uint32_t below(uint32_t n) { return uint32_t(((next() >> 32) * uint64_t(n)) >> 32); }
};

// Walker/Vose alias sampling: one draw r gives index i = ((r >> 32) * n) >> 32; keep i when
// (r & 0xFFFFFFFF) < threshold[i], otherwise take alias[i]. threshold is a probability scaled to 2^32
// (2^32 means "always keep", stored in 64 bits).
EMBEDFAST_HD int32_t alias_pick(uint64_t r, uint32_t n, const int64_t* threshold, const int32_t* alias) {
  const uint32_t i = uint32_t(((r >> 32) * uint64_t(n)) >> 32);
  return (int64_t(r & 0xFFFFFFFFull) < threshold[i]) ? int32_t(i) : alias[i];
}

}  // namespace embedfast
