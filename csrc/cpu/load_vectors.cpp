// embedfast::load_vectors — multi-threaded mmap parser for pretrained word vectors.
//
// Text (GloVe, word2vec/fastText text): the file is mapped, split into chunks at newline boundaries, and the
// chunks are parsed in parallel with std::from_chars straight into one preallocated matrix. A first parallel
// pass counts the lines of each chunk, which gives every chunk its first row and its first line number, so
// rows land in file order and errors name their line. Pages are dropped from the mapping once a chunk is done
// (MADV_DONTNEED), so the resident set stays near the size of the matrix rather than matrix + file.
//
// word2vec binary: a serial pass finds the records (a word, a space, D little-endian float32), then the
// vectors are copied in parallel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "embedfast/common.h"
#include "embedfast/mapped_file.h"
#include "embedfast/parallel.h"

namespace embedfast {
namespace {

// Order must match LOAD_STATS in embedfast/ops.py.
enum Stat {
  kRows, kDim, kHeaderRows, kHeaderDim, kLines, kBlankLines, kSkippedRows, kSpacedWords, kInvalidUtf8, kBom,
  kCrlfLines, kTruncatedLastLine, kDuplicateWords, kNumStats
};
// Reason codes; must match SKIP_REASONS in embedfast/ops.py.
enum Reason { kOk = 0, kTooFew = 1, kNotNumber = 2, kMissingWord = 3, kTruncatedRecord = 4, kOutOfRange = 5 };

constexpr size_t kChunkBytes = size_t(4) << 20;  // target chunk size: bounds the resident part of the file

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

inline const char* skip_spaces(const char* p, const char* end) {
  while (p < end && is_space(*p)) ++p;
  return p;
}
inline const char* skip_token(const char* p, const char* end) {
  while (p < end && !is_space(*p)) ++p;
  return p;
}

// End of the line starting at p (position of '\n' or end).
inline const char* line_end(const char* p, const char* end) {
  const void* nl = std::memchr(p, '\n', end - p);
  return nl ? static_cast<const char*>(nl) : end;
}

// Trailing whitespace (spaces written by fastText, the CR of CRLF) stripped.
inline const char* rstrip(const char* b, const char* e) {
  while (e > b && is_space(e[-1])) --e;
  return e;
}

int64_t count_fields(const char* p, const char* end) {
  int64_t n = 0;
  p = skip_spaces(p, end);
  while (p < end) {
    ++n;
    p = skip_spaces(skip_token(p, end), end);
  }
  return n;
}

bool valid_utf8(const unsigned char* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

// Decimal -> binary float with a fast exact path. For a mantissa w of few enough digits and a small decimal
// exponent q, both w and 10^|q| are exact in T, so one multiplication or division gives the correctly rounded
// result: directly for double (Clinger's fast path), and for float through a double product rounded once
// more, which is still correctly rounded because double has more than 2*24+2 bits (the double-rounding
// theorem for a single operation). Everything else (long mantissas, large exponents, inf/nan) goes to
// std::from_chars, which is correctly rounded. Same contract as std::from_chars (no leading +, no spaces).
template <typename T>
struct FastParse;
template <>
struct FastParse<float> {
  static constexpr uint64_t kMaxMantissa = uint64_t(1) << 24;
  static constexpr int kMaxExp10 = 10;
};
template <>
struct FastParse<double> {
  static constexpr uint64_t kMaxMantissa = uint64_t(1) << 53;
  static constexpr int kMaxExp10 = 22;
};

constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr double kInvPow10[] = {1e-0,  1e-1,  1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,  1e-8,  1e-9,  1e-10, 1e-11,
                                1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22};

// Appends the run of decimal digits at p to w (w = w * 10 + digit each), counting them in `digits`; stops
// adding to w after 19 digits (the caller then falls back). A plain loop measured faster here than an
// 8-bytes-at-a-time (SWAR) version: most fields have few digits.
__attribute__((always_inline)) inline const char* read_digits(const char* p, const char* end, uint64_t& w,
                                                              int& digits) {
  while (p < end && static_cast<unsigned>(*p - '0') < 10) {
    if (digits < 19) w = w * 10 + static_cast<unsigned>(*p - '0');
    ++digits;
    ++p;
  }
  return p;
}

template <typename T>
__attribute__((always_inline)) inline std::from_chars_result parse_number(const char* p, const char* end, T& out) {
  const char* s = p;
  bool neg = false;
  if (p < end && *p == '-') {
    neg = true;
    ++p;
  }
  uint64_t w = 0;
  int digits = 0, frac_digits = 0;
  const char* d0 = p;
  p = read_digits(p, end, w, digits);
  const bool int_part = p > d0;
  bool frac_part = false;
  if (p < end && *p == '.') {
    ++p;
    const char* f0 = p;
    p = read_digits(p, end, w, digits);
    frac_digits = static_cast<int>(p - f0);
    frac_part = frac_digits > 0;
  }
  int q = -frac_digits;
  if ((int_part || frac_part) && p < end && (*p == 'e' || *p == 'E')) {
    const char* e = p + 1;
    bool eneg = false;
    if (e < end && (*e == '-' || *e == '+')) {
      eneg = *e == '-';
      ++e;
    }
    int ev = 0;
    const char* e0 = e;
    while (e < end && static_cast<unsigned>(*e - '0') < 10 && ev < 100000) {
      ev = ev * 10 + (*e - '0');
      ++e;
    }
    if (e > e0) {
      q += eneg ? -ev : ev;
      p = e;
    }
  }
  if (!(int_part || frac_part) || digits > 19) return std::from_chars(s, end, out);
  if constexpr (std::is_same_v<T, float>) {
    // float with a negative exponent (the common "-0.12345"): multiply by a rounded 10^-k in double
    // (relative error < 2^-52, i.e. within 2 double ulps of the exact value), which rounds to the correct
    // float unless the double lies within a few ulps of a float rounding midpoint; those rare values go to
    // std::from_chars.
    if (q < 0 && q >= -22 && w <= (uint64_t(1) << 53)) {
      double v = static_cast<double>(w) * kInvPow10[-q];
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      const uint64_t low = bits & ((uint64_t(1) << 29) - 1);  // the 29 mantissa bits a float drops
      if (low - ((uint64_t(1) << 28) - 4) > 8) {
        out = static_cast<float>(neg ? -v : v);
        return {p, std::errc()};
      }
      return std::from_chars(s, end, out);
    }
  }
  // Exact operands, one correctly rounded operation (see above).
  if (w <= FastParse<T>::kMaxMantissa && q >= -FastParse<T>::kMaxExp10 && q <= FastParse<T>::kMaxExp10) {
    double v = static_cast<double>(w);
    v = q < 0 ? v / kPow10[-q] : v * kPow10[q];
    out = static_cast<T>(neg ? -v : v);
    return {p, std::errc()};
  }
  return std::from_chars(s, end, out);
}

// The most common field of real files, "[-]D.FFFFFFF" (one integer digit, 1 to 7 fraction digits, no exponent),
// without a branch per character: the fraction digits are found and converted 8 bytes at a time (SWAR). Same
// rounding argument as the float fast path of parse_number. Returns the end of the number, or nullptr when
// the field has another shape (the caller then uses parse_number). Needs 11 readable bytes at p.
inline const char* parse_common_float(const char* p, const char* end, float& out) {
  static constexpr uint64_t kPow10Int[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
  if (end - p < 11) return nullptr;
  const bool neg = *p == '-';
  const char* d = p + neg;
  const unsigned i0 = static_cast<unsigned>(d[0] - '0');
  if (i0 >= 10 || d[1] != '.') return nullptr;
  uint64_t v;
  std::memcpy(&v, d + 2, 8);
  const uint64_t x = v - 0x3030303030303030ULL;
  const uint64_t nondigit = (x | (x + 0x7676767676767676ULL)) & 0x8080808080808080ULL;
  if (nondigit == 0) return nullptr;  // 8 or more fraction digits
  const int n = __builtin_ctzll(nondigit) >> 3;
  const char* e = d + 2 + n;
  if (n == 0 || *e == 'e' || *e == 'E') return nullptr;
  uint64_t f = x << (8 * (8 - n));  // the n digits, preceded by zero digits
  f = ((f & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
  f = ((f & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
  f = ((f & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
  const double dv = static_cast<double>(i0 * kPow10Int[n] + f) * kInvPow10[n];
  uint64_t bits;
  std::memcpy(&bits, &dv, sizeof bits);
  if ((bits & ((uint64_t(1) << 29) - 1)) - ((uint64_t(1) << 28) - 4) <= 8) return nullptr;  // near a midpoint
  out = static_cast<float>(neg ? -dv : dv);
  return e;
}

std::string quote_token(const char* b, const char* e) {
  std::string s(b, std::min<size_t>(e - b, 40));
  if (static_cast<size_t>(e - b) > 40) s += "...";
  return "'" + s + "'";
}

struct LineResult {
  Reason reason = kOk;
  const char* word_begin = nullptr;
  const char* word_end = nullptr;
  bool spaced = false;
  std::string detail;  // only filled for errors
};

// Parses one non-blank line (trailing whitespace already stripped) into out[0..D).
template <typename T>
LineResult parse_line(const char* p, const char* end, int64_t D, T* out, bool want_detail) {
  LineResult r;
  const char* wb = skip_spaces(p, end);
  const char* we = skip_token(wb, end);
  const char* q = we;
  int64_t k = 0;
  // Fast path: the word is one token followed by exactly D numbers.
  for (; k < D; ++k) {
    q = skip_spaces(q, end);
    if (q == end) break;
    T v;
    if constexpr (std::is_same_v<T, float>) {
      const char* e = parse_common_float(q, end, v);
      if (e != nullptr && (e == end || is_space(*e))) {
        out[k] = v;
        q = e;
        continue;
      }
    }
    auto res = parse_number<T>(q, end, v);
    if (res.ec != std::errc() || (res.ptr < end && !is_space(*res.ptr))) break;
    out[k] = v;
    q = res.ptr;
  }
  if (k == D && skip_spaces(q, end) == end) {
    r.word_begin = wb;
    r.word_end = we;
    return r;
  }
  // Slow path: the word may contain spaces (the last D fields are the vector), or the line is malformed.
  const int64_t nf = count_fields(p, end);
  if (nf < D + 1) {
    // D fields that all start like numbers: the word is missing; otherwise values are missing.
    T tmp;
    const bool first_is_number = nf == D && parse_number<T>(wb, skip_token(wb, end), tmp).ec == std::errc();
    r.reason = first_is_number ? kMissingWord : kTooFew;
    if (want_detail) {
      const int64_t nv = std::max<int64_t>(nf - 1, 0);
      r.detail = first_is_number ? "found " + std::to_string(D) + " numbers but no word before them"
                                 : "expected a word and " + std::to_string(D) + " values, found " +
                                       std::to_string(nv) + (nv == 1 ? " value" : " values");
    }
    return r;
  }
  // Word = the first nf - D fields with the bytes between them.
  const char* t = wb;
  for (int64_t f = 0; f < nf - D; ++f) {
    t = skip_spaces(t, end);
    we = skip_token(t, end);
    t = we;
  }
  r.word_begin = wb;
  r.word_end = we;
  r.spaced = nf - D > 1;
  q = we;
  for (k = 0; k < D; ++k) {
    q = skip_spaces(q, end);
    const char* tok_end = skip_token(q, end);
    T v;
    auto res = parse_number<T>(q, tok_end, v);
    if (res.ec == std::errc::result_out_of_range) {
      r.reason = kOutOfRange;
      if (want_detail)
        r.detail = "value " + quote_token(q, tok_end) + " (field " + std::to_string(nf - D + k + 1) +
                   ") is out of range for the dtype";
      return r;
    }
    if (res.ec != std::errc() || res.ptr != tok_end) {
      r.reason = kNotNumber;
      if (want_detail)
        r.detail = quote_token(q, tok_end) + " (field " + std::to_string(nf - D + k + 1) + ") is not a number";
      return r;
    }
    out[k] = v;
    q = tok_end;
  }
  return r;
}

struct ChunkOut {
  const char* begin = nullptr;
  const char* end = nullptr;
  int64_t lines = 0;        // pass 1
  int64_t first_line = 0;   // 0-based line index of the chunk's first line in the file
  int64_t first_row = 0;    // row slot where the chunk writes
  int64_t rows = 0;         // rows written
  std::string words;        // word bytes back to back
  std::vector<int64_t> word_len;
  std::vector<std::pair<int64_t, int64_t>> skipped;  // (0-based line index, reason)
  int64_t blank = 0, spaced = 0, invalid_utf8 = 0, crlf = 0;
  int64_t error_line = -1;  // strict mode: first bad line of this chunk
  std::string error;
};

int resolve_threads(int64_t n) {
  int t = n > 0 ? static_cast<int>(n) : at::get_num_threads();
  return std::max(1, std::min(t, 256));
}

struct Header {
  bool present = false;
  int64_t rows = -1, dim = -1;
};

bool parse_uint(const char* b, const char* e, int64_t& v) {
  if (b == e) return false;
  auto res = std::from_chars(b, e, v);
  return res.ec == std::errc() && res.ptr == e && v >= 0;
}

// Reads an "N D" header from the line [b, e); true if it is one.
bool read_header(const char* b, const char* e, Header& h) {
  const char* p = skip_spaces(b, e);
  const char* t1 = skip_token(p, e);
  const char* q = skip_spaces(t1, e);
  const char* t2 = skip_token(q, e);
  if (skip_spaces(t2, e) != e) return false;
  int64_t n, d;
  if (!parse_uint(p, t1, n) || !parse_uint(q, t2, d)) return false;
  h.present = true;
  h.rows = n;
  h.dim = d;
  return true;
}

std::string where(const std::string& path, int64_t line) { return path + ":" + std::to_string(line) + ": "; }

using Result = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Rows whose word (as bytes) already occurred on an earlier row, in increasing order. Open addressing over
// a power-of-two table of row indices; a hash match is confirmed by comparing the bytes.
at::Tensor find_duplicates(const uint8_t* wb, const int64_t* off, int64_t rows) {
  std::vector<int64_t> dups;
  if (rows > 1) {
    size_t cap = 16;
    while (cap < static_cast<size_t>(rows) * 2) cap <<= 1;
    std::vector<int64_t> slot(cap, -1);
    std::vector<uint64_t> slot_hash(cap);
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* w = wb + off[r];
      const size_t n = off[r + 1] - off[r];
      uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
      for (size_t i = 0; i < n; ++i) h = (h ^ w[i]) * 0x100000001B3ULL;
      h ^= h >> 29;
      for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (slot[i] < 0) {
          slot[i] = r;
          slot_hash[i] = h;
          break;
        }
        const int64_t o = slot[i];
        if (slot_hash[i] == h && static_cast<size_t>(off[o + 1] - off[o]) == n &&
            std::memcmp(wb + off[o], w, n) == 0) {
          dups.push_back(r);
          break;
        }
      }
    }
  }
  return at::tensor(dups, at::kLong);
}

Result finish(at::Tensor matrix, int64_t rows, std::vector<ChunkOut>& chunks, std::vector<int64_t>& stats,
              const std::vector<std::pair<int64_t, int64_t>>& extra_skipped) {
  int64_t nbytes = 0;
  for (auto& c : chunks) nbytes += static_cast<int64_t>(c.words.size());
  auto word_bytes = at::empty({nbytes}, at::kByte);
  auto offsets = at::empty({rows + 1}, at::kLong);
  auto* wb = word_bytes.data_ptr<uint8_t>();
  auto* off = offsets.data_ptr<int64_t>();
  int64_t pos = 0, r = 0;
  off[0] = 0;
  std::vector<std::pair<int64_t, int64_t>> skipped = extra_skipped;
  for (auto& c : chunks) {
    if (!c.words.empty()) std::memcpy(wb + pos, c.words.data(), c.words.size());
    for (int64_t len : c.word_len) {
      pos += len;
      off[++r] = pos;
    }
    for (auto& s : c.skipped) skipped.emplace_back(s.first + 1, s.second);
    std::string().swap(c.words);
  }
  TORCH_INTERNAL_ASSERT(r == rows);
  auto duplicates = find_duplicates(wb, off, rows);
  stats[kDuplicateWords] = duplicates.numel();
  auto skipped_t = at::empty({static_cast<int64_t>(skipped.size()), 2}, at::kLong);
  for (size_t i = 0; i < skipped.size(); ++i) {
    skipped_t[i][0] = skipped[i].first;
    skipped_t[i][1] = skipped[i].second;
  }
  stats[kRows] = rows;
  stats[kSkippedRows] = static_cast<int64_t>(skipped.size());
  auto stats_t = at::tensor(stats, at::kLong);
  // Give back the slack of the preallocation when it is large (many blank or skipped lines).
  if (matrix.size(0) > rows + rows / 16 + 16) matrix = matrix.narrow(0, 0, rows).clone();
  else matrix = matrix.narrow(0, 0, rows);
  return {matrix, word_bytes, offsets, stats_t, skipped_t, duplicates};
}

template <typename T>
Result load_text(const ReadOnlyMap& f, const std::string& path, int64_t dim, int64_t header_mode, int64_t limit,
                 bool skip_errors, int threads, at::ScalarType dtype) {
  std::vector<int64_t> stats(kNumStats, 0);
  stats[kHeaderRows] = stats[kHeaderDim] = -1;
  const char* p = f.data();
  const char* end = p + f.size();
  if (f.size() >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
    p += 3;
    stats[kBom] = 1;
  }
  // Header.
  Header h;
  int64_t header_lines = 0;
  {
    const char* le = line_end(p, end);
    const char* content_end = rstrip(p, le);
    bool is_header = header_mode != 0 && read_header(p, content_end, h);
    TORCH_CHECK_VALUE(header_mode != 1 || is_header, where(path, 1),
                      "expected a word2vec header 'N D' (two non-negative integers), found ",
                      quote_token(p, content_end));
    if (is_header) {
      TORCH_CHECK_VALUE(h.dim > 0, where(path, 1), "the header gives dimension 0");
      TORCH_CHECK_VALUE(dim <= 0 || dim == h.dim, where(path, 1), "the header gives dimension ", h.dim,
                        " but dim=", dim, " was requested");
      stats[kHeaderRows] = h.rows;
      stats[kHeaderDim] = h.dim;
      header_lines = 1;
      if (le < end && le > p && le[-1] == '\r') stats[kCrlfLines]++;
      p = le < end ? le + 1 : end;
    }
  }
  // Dimension: requested, else the header's, else the most common field count of the first data lines.
  int64_t D = dim > 0 ? dim : (h.present ? h.dim : -1);
  if (D <= 0) {
    std::map<int64_t, int64_t> votes;
    const char* q = p;
    for (int n = 0; n < 100 && q < end;) {
      const char* le = line_end(q, end);
      int64_t nf = count_fields(q, le);
      if (nf > 0) {
        votes[nf]++;
        ++n;
      }
      q = le < end ? le + 1 : end;
    }
    TORCH_CHECK_VALUE(!votes.empty(), "load_vectors: '", path, "' has no data lines",
                      h.present ? " after its header" : (f.size() == 0 ? " (the file is empty)" : ""));
    int64_t best = 0, best_n = -1;
    for (auto& [nf, n] : votes)
      if (n > best_n) best = nf, best_n = n;
    TORCH_CHECK_VALUE(best >= 2, where(path, header_lines + 1),
                      "cannot infer the dimension: data lines have a single field (a word and no values?)");
    D = best - 1;
  } else if (h.present) {
    // A wrong header is reported on the first data line, not as an error on every line.
    const char* q = p;
    int64_t line = header_lines;
    while (q < end) {
      const char* le = line_end(q, end);
      ++line;
      int64_t nf = count_fields(q, le);
      if (nf > 0) {
        TORCH_CHECK_VALUE(nf >= D + 1 || skip_errors, where(path, line), "the header gives dimension ", D,
                          " but this line has ", nf - 1, " values");
        break;
      }
      q = le < end ? le + 1 : end;
    }
  }
  stats[kDim] = D;
  // limit: cut the data region after `limit` non-blank lines.
  if (limit >= 0) {
    const char* q = p;
    int64_t n = 0;
    while (q < end && n < limit) {
      const char* le = line_end(q, end);
      if (skip_spaces(q, le) != le) ++n;
      q = le < end ? le + 1 : end;
    }
    end = q;
  }
  // Chunks at newline boundaries.
  std::vector<ChunkOut> chunks;
  {
    const size_t bytes = end - p;
    size_t n_chunks = std::max<size_t>(static_cast<size_t>(threads) * 4, bytes / kChunkBytes + 1);
    n_chunks = std::max<size_t>(1, std::min(n_chunks, bytes / 64 + 1));
    const size_t step = bytes / n_chunks + 1;
    const char* b = p;
    while (b < end) {
      const char* e = b + std::min<size_t>(step, end - b);
      if (e < end) e = line_end(e, end) + (line_end(e, end) < end ? 1 : 0);
      ChunkOut c;
      c.begin = b;
      c.end = e;
      chunks.push_back(std::move(c));
      b = e;
    }
  }
  const int64_t nc = static_cast<int64_t>(chunks.size());
  // Pass 1: lines per chunk.
  run_dynamic(nc, threads, [&](int64_t i) {
    auto& c = chunks[i];
    int64_t n = 0;
    for (const char* q = c.begin; q < c.end;) {
      const void* nl = std::memchr(q, '\n', c.end - q);
      ++n;
      q = nl ? static_cast<const char*>(nl) + 1 : c.end;
    }
    c.lines = n;
    f.release(c.begin, c.end);
  });
  int64_t total_lines = header_lines;
  for (auto& c : chunks) {
    c.first_line = total_lines;
    c.first_row = total_lines - header_lines;
    total_lines += c.lines;
  }
  stats[kLines] = total_lines;
  if (end > f.data() && end[-1] != '\n' && f.size() > 0 && end == f.data() + f.size())
    stats[kTruncatedLastLine] = 1;
  auto matrix = at::empty({total_lines - header_lines, D}, at::TensorOptions().dtype(dtype));
  T* M = matrix.data_ptr<T>();
  std::atomic<int64_t> first_error_line{std::numeric_limits<int64_t>::max()};
  // Pass 2: parse.
  run_dynamic(nc, threads, [&](int64_t i) {
    auto& c = chunks[i];
    int64_t line = c.first_line;
    T* out = M + c.first_row * D;
    for (const char* q = c.begin; q < c.end; ++line) {
      if (!skip_errors && line > first_error_line.load(std::memory_order_relaxed)) break;
      const char* le = line_end(q, c.end);
      const char* next = le < c.end ? le + 1 : c.end;
      const char* ce = rstrip(q, le);
      if (le < c.end && le > q && le[-1] == '\r') c.crlf++;
      if (skip_spaces(q, ce) == ce) {
        c.blank++;
        q = next;
        continue;
      }
      LineResult r = parse_line<T>(q, ce, D, out, !skip_errors);
      if (r.reason != kOk) {
        if (skip_errors) {
          c.skipped.emplace_back(line, r.reason);
        } else {
          bool last_unterminated = le == end && stats[kTruncatedLastLine];
          c.error_line = line;
          c.error = r.detail + (last_unterminated ? " (the last line has no newline: truncated file?)" : "");
          int64_t cur = first_error_line.load();
          while (line < cur && !first_error_line.compare_exchange_weak(cur, line)) {}
          break;
        }
      } else {
        const auto* wb = reinterpret_cast<const unsigned char*>(r.word_begin);
        const size_t wl = r.word_end - r.word_begin;
        c.words.append(r.word_begin, wl);
        c.word_len.push_back(static_cast<int64_t>(wl));
        if (r.spaced) c.spaced++;
        if (!valid_utf8(wb, wl)) c.invalid_utf8++;
        ++c.rows;
        out += D;
      }
      q = next;
    }
    f.release(c.begin, c.end);
  });
  if (!skip_errors) {
    for (auto& c : chunks) {
      if (c.error_line >= 0 && c.error_line == first_error_line.load())
        TORCH_CHECK_VALUE(false, where(path, c.error_line + 1), c.error);
    }
  }
  // Compact: move each chunk's rows down to follow the previous chunk's.
  int64_t rows = 0;
  for (auto& c : chunks) {
    if (c.first_row != rows && c.rows > 0)
      std::memmove(M + rows * D, M + c.first_row * D, sizeof(T) * c.rows * D);
    rows += c.rows;
    stats[kBlankLines] += c.blank;
    stats[kSpacedWords] += c.spaced;
    stats[kInvalidUtf8] += c.invalid_utf8;
    stats[kCrlfLines] += c.crlf;
  }
  return finish(matrix, rows, chunks, stats, {});
}

template <typename T>
Result load_binary(const ReadOnlyMap& f, const std::string& path, int64_t dim, int64_t limit, bool skip_errors,
                   int threads, at::ScalarType dtype) {
  std::vector<int64_t> stats(kNumStats, 0);
  const char* base = f.data();
  const char* p = base;
  const char* end = p + f.size();
  TORCH_CHECK_VALUE(f.size() > 0, "load_vectors: '", path, "' is empty");
  const char* le = line_end(p, end);
  Header h;
  TORCH_CHECK_VALUE(read_header(p, rstrip(p, le), h) && le < end, "load_vectors: '", path,
                    "' does not start with a word2vec binary header 'N D\\n' (found ", quote_token(p, le), ")");
  TORCH_CHECK_VALUE(h.dim > 0, "load_vectors: '", path, "': the header gives dimension 0");
  TORCH_CHECK_VALUE(dim <= 0 || dim == h.dim, "load_vectors: '", path, "': the header gives dimension ", h.dim,
                    " but dim=", dim, " was requested");
  const int64_t D = h.dim;
  stats[kHeaderRows] = h.rows;
  stats[kHeaderDim] = h.dim;
  stats[kDim] = D;
  stats[kLines] = 1;
  p = le + 1;
  const int64_t want = limit >= 0 ? std::min(limit, h.rows) : h.rows;
  const size_t vec_bytes = sizeof(float) * D;
  // Serial pass: locate the records.
  std::vector<ChunkOut> chunks(1);
  auto& c = chunks[0];
  std::vector<const char*> vec_at;
  vec_at.reserve(want);
  std::vector<std::pair<int64_t, int64_t>> skipped;
  for (int64_t r = 0; r < want; ++r) {
    while (p < end && (*p == '\n' || *p == '\r')) ++p;
    const char* wb = p;
    const size_t max_word = std::min<size_t>(end - p, 1 << 16);
    const void* sp = std::memchr(p, ' ', max_word);
    const bool ok = sp != nullptr && static_cast<size_t>(end - static_cast<const char*>(sp) - 1) >= vec_bytes;
    if (!ok) {
      TORCH_CHECK_VALUE(skip_errors, "load_vectors: '", path, "': record ", r + 1, " of ", h.rows,
                        " (byte offset ", wb - base, ") is truncated: the file ends before its ", D,
                        " float32 values (the header promises ", h.rows, " records)");
      skipped.emplace_back(r + 1, kTruncatedRecord);
      break;
    }
    const char* we = static_cast<const char*>(sp);
    c.words.append(wb, we - wb);
    c.word_len.push_back(we - wb);
    if (!valid_utf8(reinterpret_cast<const unsigned char*>(wb), we - wb)) c.invalid_utf8++;
    vec_at.push_back(we + 1);
    p = we + 1 + vec_bytes;
  }
  const int64_t rows = static_cast<int64_t>(vec_at.size());
  auto matrix = at::empty({rows, D}, at::TensorOptions().dtype(dtype));
  T* M = matrix.data_ptr<T>();
  const int64_t block = 4096;
  run_dynamic((rows + block - 1) / block, threads, [&](int64_t b) {
    for (int64_t r = b * block; r < std::min(rows, (b + 1) * block); ++r) {
      if constexpr (std::is_same_v<T, float>) {
        std::memcpy(M + r * D, vec_at[r], vec_bytes);
      } else {
        for (int64_t k = 0; k < D; ++k) {
          float v;
          std::memcpy(&v, vec_at[r] + sizeof(float) * k, sizeof(float));
          M[r * D + k] = static_cast<T>(v);
        }
      }
    }
  });
  stats[kInvalidUtf8] = c.invalid_utf8;
  return finish(matrix, rows, chunks, stats, skipped);
}

Result load_vectors_cpu(c10::string_view path_sv, int64_t dim, int64_t header, int64_t limit, bool binary,
                        bool skip_errors, int64_t num_threads, at::ScalarType dtype) {
  const std::string path(path_sv.data(), path_sv.size());
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble,
                    "load_vectors: dtype must be float32 or float64 (convert afterwards for others), got ", dtype);
  TORCH_CHECK_VALUE(header >= -1 && header <= 1, "load_vectors: header must be -1 (detect), 0 or 1, got ", header);
  TORCH_CHECK_VALUE(dim >= 0, "load_vectors: dim must be >= 0 (0 infers it), got ", dim);
  ReadOnlyMap f(path, "load_vectors");
  const int threads = resolve_threads(num_threads);
  if (binary) {
    return dtype == at::kFloat ? load_binary<float>(f, path, dim, limit, skip_errors, threads, dtype)
                               : load_binary<double>(f, path, dim, limit, skip_errors, threads, dtype);
  }
  return dtype == at::kFloat ? load_text<float>(f, path, dim, header, limit, skip_errors, threads, dtype)
                             : load_text<double>(f, path, dim, header, limit, skip_errors, threads, dtype);
}

}  // namespace

// The loader reads a file, so it has no tensor inputs to dispatch on: register it for CPU and as the
// catch-all (CompositeExplicitAutograd) so torch.ops.embedfast.load_vectors works without tensor arguments.
TORCH_LIBRARY_IMPL(embedfast, CompositeExplicitAutograd, m) { m.impl("load_vectors", &load_vectors_cpu); }

}  // namespace embedfast
