// Hashing of byte strings (words) and the open-addressing table keyed by them, shared by the corpus pipeline
// (vocabulary counts and lookups) and the loader (duplicate words).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "embedfast/rng.h"

namespace embedfast {

// 64-bit hash of the n bytes at p: 8 bytes at a time, finished by mix64 (embedfast/rng.h).
inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = uint64_t(n) * kGolden;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, n - i);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
  }
  return mix64(h);
}

// Open-addressing (linear probing) table from byte strings to int64 values. Keys are not copied (they must
// outlive the table) unless `copy_keys`: then each new key is copied into the table's own arena, so the
// table does not keep the caller's buffer (e.g. a block of a file being read) in use.
class WordTable {
 public:
  struct Slot {
    const char* ptr = nullptr;
    uint32_t len = 0;
    uint64_t hash = 0;
    int64_t value = 0;
  };
  explicit WordTable(size_t capacity_hint = 1024, bool copy_keys = false) : copy_keys_(copy_keys) {
    rehash(std::max<size_t>(16, next_pow2(capacity_hint * 2)));
  }

  // Returns the slot of the key (h = hash_bytes(p, n)), inserting it with value 0 when absent.
  Slot& upsert(const char* p, uint32_t n, uint64_t h) {
    size_t i = h & mask_;
    while (true) {
      Slot& s = slots_[i];
      if (s.ptr == nullptr) {
        if ((size_ + 1) * 2 > slots_.size()) {
          rehash(slots_.size() * 2);
          return upsert(p, n, h);
        }
        s.ptr = copy_keys_ ? keep(p, n) : p;
        s.len = n;
        s.hash = h;
        ++size_;
        return s;
      }
      if (s.hash == h && s.len == n && std::memcmp(s.ptr, p, n) == 0) return s;
      i = (i + 1) & mask_;
    }
  }
  // The slot of the key, or nullptr when absent.
  const Slot* find(const char* p, uint32_t n, uint64_t h) const {
    size_t i = h & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.ptr == nullptr) return nullptr;
      if (s.hash == h && s.len == n && std::memcmp(s.ptr, p, n) == 0) return &s;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }
  const std::vector<Slot>& slots() const { return slots_; }

 private:
  static size_t next_pow2(size_t x) {
    size_t p = 1;
    while (p < x) p <<= 1;
    return p;
  }
  void rehash(size_t cap) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.ptr == nullptr) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].ptr != nullptr) i = (i + 1) & mask_;
      slots_[i] = s;
      ++size_;
    }
  }
  // a stable copy of the key in the arena (blocks of 1 MiB; a longer key gets a block of its own)
  const char* keep(const char* p, size_t n) {
    constexpr size_t kArena = size_t(1) << 20;
    if (n > kArena - arena_used_ || arena_.empty()) {
      arena_.emplace_back(new char[std::max(kArena, n)]);
      arena_used_ = 0;
    }
    char* dst = arena_.back().get() + arena_used_;
    if (n > 0) std::memcpy(dst, p, n);
    arena_used_ = n >= kArena ? kArena : arena_used_ + n;
    return dst;
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  bool copy_keys_ = false;
  std::vector<std::unique_ptr<char[]>> arena_;
  size_t arena_used_ = 0;
};

}  // namespace embedfast
