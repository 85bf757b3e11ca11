// Byte classes of the text formats every parser reads (vectors files, word2vec corpora), in one place so that
// the loader and the corpus pipeline split tokens and lines by the same rule.
#pragma once

#include <cstddef>
#include <cstring>

namespace embedfast {

// Whitespace inside a line: ' ', '\t', '\r', '\v', '\f' ('\n' ends the line and is not one of them).
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// A byte that ends a token: whitespace or '\n'.
inline bool is_separator(char c) { return c == '\n' || is_space(c); }

// The UTF-8 byte-order mark; a text that starts with it has it skipped, not read as part of its first token.
constexpr char kUtf8Bom[] = "\xEF\xBB\xBF";
constexpr size_t kUtf8BomSize = 3;

// True when the n bytes at p start with the UTF-8 byte-order mark.
inline bool starts_with_bom(const char* p, size_t n) {
  return n >= kUtf8BomSize && std::memcmp(p, kUtf8Bom, kUtf8BomSize) == 0;
}

}  // namespace embedfast
