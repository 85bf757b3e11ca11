// fastText's sub-word rule, the one copy of it in embedfast: the loader's bags (csrc/cpu/vectors_fasttext.cpp,
// op fasttext_ngram_buckets) and a sub-word trainer use these functions; Python never re-implements them.
//
// The rule (fastText's src/dictionary.cc, Bojanowski et al. 2017):
// - a word w is wrapped in boundary markers: "<" + w + ">";
// - its n-grams are the substrings of minn..maxn *characters* of UTF-8: a character starts at every byte that is
//   not a continuation byte (10xxxxxx) and takes the continuation bytes after it (bytes that are not UTF-8 are
//   cut by the same test, so every byte string has its n-grams);
// - the n-grams of one character that are the boundary markers themselves ("<" alone at the start, ">" alone
//   at the end) are left out;
// - order: by start character, then by length; an n-gram that occurs twice is listed twice (the mean counts it
//   twice);
// - each n-gram's bucket is FNV-1a 32-bit of its bytes modulo the bucket count, where fastText feeds every byte
//   sign-extended (h ^= uint32_t(int8_t(byte))): the models fastText and everyone else publish were trained with
//   that variant, which differs from textbook FNV-1a for bytes >= 0x80;
// - the end-of-sentence token "</s>" has no n-grams; neither has any word when maxn < 1 or there are no buckets.
//
// A word's vector is the mean of its own input row (when it is in the dictionary) and the rows nwords + bucket
// of its n-grams; a word with neither is the zero vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace embedfast {
namespace subwords {

constexpr uint32_t kFnvOffsetBasis = 2166136261u;
constexpr uint32_t kFnvPrime = 16777619u;

// One FNV-1a step with fastText's sign extension of the byte.
inline uint32_t fnv1a_step(uint32_t h, char byte) {
  return (h ^ static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(byte)))) * kFnvPrime;
}

// fastText's hash of a byte string (Dictionary::hash).
inline uint32_t fasttext_hash(const char* s, size_t n) {
  uint32_t h = kFnvOffsetBasis;
  for (size_t i = 0; i < n; ++i) h = fnv1a_step(h, s[i]);
  return h;
}

inline bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The end-of-sentence token, which fastText gives no n-grams.
inline bool is_eos(const char* w, size_t n) { return n == 4 && std::memcmp(w, "</s>", 4) == 0; }

// Whether any word gets n-grams under these settings.
inline bool has_ngrams(int64_t minn, int64_t maxn, int64_t buckets) {
  return buckets > 0 && maxn > 0 && minn <= maxn;
}

// Calls emit(bucket) (0 <= bucket < buckets) for every n-gram of "<" + word + ">", in fastText's order. The
// n-gram's hash is extended byte by byte from its start (FNV-1a is a left fold), so each n-gram costs the bytes
// it adds, not its length. Requires minn >= 0, maxn >= 0, buckets >= 0 (the caller checks).
template <typename Emit>
inline void for_each_ngram_bucket(const char* word, size_t n, int64_t minn, int64_t maxn, int64_t buckets,
                                  Emit&& emit) {
  if (!has_ngrams(minn, maxn, buckets) || is_eos(word, n)) return;
  const uint32_t nb = static_cast<uint32_t>(buckets);  // buckets <= INT32_MAX: checked by the callers
  const size_t len = n + 2;                            // "<" word ">"
  auto at = [&](size_t k) -> char { return k == 0 ? '<' : (k == len - 1 ? '>' : word[k - 1]); };
  for (size_t i = 0; i < len; ++i) {
    if (is_continuation_byte(at(i))) continue;
    uint32_t h = kFnvOffsetBasis;
    size_t j = i;
    for (int64_t chars = 1; j < len && chars <= maxn; ++chars) {
      h = fnv1a_step(h, at(j++));
      while (j < len && is_continuation_byte(at(j))) h = fnv1a_step(h, at(j++));
      if (chars >= minn && !(chars == 1 && (i == 0 || j == len))) emit(static_cast<int64_t>(h % nb));
    }
  }
}

// Number of n-grams for_each_ngram_bucket emits.
inline int64_t count_ngrams(const char* word, size_t n, int64_t minn, int64_t maxn, int64_t buckets) {
  int64_t count = 0;
  for_each_ngram_bucket(word, n, minn, maxn, buckets, [&](int64_t) { ++count; });
  return count;
}

}  // namespace subwords
}  // namespace embedfast
