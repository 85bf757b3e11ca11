// embedfast::load_vectors — multi-threaded parser for pretrained word vectors.
//
// Files are read with pread into per-thread buffers, never mapped (see embedfast/input_file.h): a file that is
// truncated, appended to or rewritten while it is read gives an error naming it ("changed while it was being
// read"), never SIGBUS and never silently fewer rows. FIFOs, directories and devices are refused at open.
//
// Text (GloVe, word2vec/fastText text): the file is split into chunks at newline boundaries, and the chunks are
// parsed in parallel, block by block (a line straddling two blocks is carried over whole), with
// std::from_chars-exact number parsing straight into one preallocated matrix. A first parallel pass counts the
// lines of each chunk, which gives every chunk its first line number and its first row slot, so rows land in
// file order and errors name their line. A chunk gets at most min(lines, bytes / (2D + 1)) slots (a row of D
// values takes at least 2D + 1 bytes), so the matrix is bounded by the file's size whatever a header claims.
//
// Rules (strict mode raises ValueError "<file>:<line>: ..."; skip_errors lists the line and a reason code):
// - dimension: dim=, else the header's, else the D that reads the most of the first 100 data lines as rows (by
//   the next rule), which must be more than half of them and strictly more than any other D reads (otherwise,
//   e.g. on a tie, an error naming the lines and their field counts, asking for dim=);
// - a row with more fields than a word and D values is a word containing spaces (the last D fields are the
//   vector: GloVe 840B has ". . ." and "at name@domain.com") unless the extra fields after the first are all
//   numbers: then it is a row with too many values;
// - NaN and infinite values ("nan", "inf", "infinity", in text or as float32 bits in binary) are refused
//   (reason "not a number" for NaN, "value out of range" for infinities), like values beyond the dtype's range;
// - a header "N D" is a promise: a file that ends before N rows (min(N, limit) with limit) is an error naming the
//   counts and the last line; with skip_errors the rows read are kept, a last line without its newline (probably
//   cut) is skipped as a truncated record, and one more "truncated record" entry is listed at the line after
//   the last one. More rows than promised are read (and visible in the stats).
//
// word2vec binary: a serial pass reads the records (a word, a space, D little-endian float32) block by block and
// copies the vectors into the matrix. The header's N is checked against the file's size before allocating.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "embedfast/alloc.h"
#include "embedfast/common.h"
#include "embedfast/input_file.h"
#include "embedfast/parallel.h"

namespace embedfast {
namespace {

// Order must match LOAD_STATS in embedfast/ops.py.
enum Stat {
  kRows, kDim, kHeaderRows, kHeaderDim, kLines, kBlankLines, kSkippedRows, kSpacedWords, kInvalidUtf8, kBom,
  kCrlfLines, kTruncatedLastLine, kDuplicateWords, kNumStats
};
// Reason codes; must match SKIP_REASONS in embedfast/ops.py.
enum Reason {
  kOk = 0, kTooFew = 1, kNotNumber = 2, kMissingWord = 3, kTruncatedRecord = 4, kOutOfRange = 5, kTooMany = 6
};

constexpr size_t kChunkBytes = size_t(4) << 20;  // target chunk size (parallel work items)
constexpr size_t kReadBlock = size_t(1) << 20;   // pread block of the parse (fits in L2 with the parse)
constexpr size_t kHeadBlock = size_t(64) << 10;  // pread block for the header, the dimension vote and limit

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
  if (p == end) return end;  // an empty range may have no pointer (memchr's argument must not be null)
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

// std::from_chars that refuses NaN and infinities (an error; see the rules at the top). Only the slow paths of
// parse_number get here, so the check costs nothing on the common fields.
template <typename T>
inline std::from_chars_result from_chars_finite(const char* s, const char* end, T& out) {
  auto r = std::from_chars(s, end, out);
  if (r.ec == std::errc() && !std::isfinite(out)) r.ec = std::errc::invalid_argument;
  return r;
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
  if (!(int_part || frac_part) || digits > 19) return from_chars_finite(s, end, out);
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
      return from_chars_finite(s, end, out);
    }
  }
  // Exact operands, one correctly rounded operation (see above).
  if (w <= FastParse<T>::kMaxMantissa && q >= -FastParse<T>::kMaxExp10 && q <= FastParse<T>::kMaxExp10) {
    double v = static_cast<double>(w);
    v = q < 0 ? v / kPow10[-q] : v * kPow10[q];
    out = static_cast<T>(neg ? -v : v);
    return {p, std::errc()};
  }
  return from_chars_finite(s, end, out);
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

std::string quote_token(const char* b, const char* e) { return "'" + show_bytes(b, e, 40) + "'"; }

struct LineResult {
  Reason reason = kOk;
  const char* word_begin = nullptr;
  const char* word_end = nullptr;
  bool spaced = false;
  std::string detail;  // only filled for errors
};

// True if the token [b, e) is a whole finite number.
template <typename T>
bool is_number(const char* b, const char* e) {
  T v;
  auto res = parse_number<T>(b, e, v);
  return res.ec == std::errc() && res.ptr == e;
}

// For a line of nf > D + 1 fields starting at p: the extra fields (2 .. nf - D) that would join the word, as
// [b, e); `all_numbers` tells whether every one of them is a number (then the row has too many values rather
// than a word containing spaces).
template <typename T>
void extra_fields(const char* p, const char* end, int64_t nf, int64_t D, const char*& b, const char*& e,
                  bool& all_numbers) {
  const char* t = skip_token(skip_spaces(p, end), end);
  b = skip_spaces(t, end);
  all_numbers = true;
  for (int64_t f = 1; f < nf - D; ++f) {
    t = skip_spaces(t, end);
    const char* te = skip_token(t, end);
    if (all_numbers && !is_number<T>(t, te)) all_numbers = false;
    t = te;
  }
  e = t;
}

std::string too_many_detail(int64_t D, int64_t nf, const char* xb, const char* xe) {
  return "expected a word and " + std::to_string(D) + " values, found " + std::to_string(nf - 1) +
         " values: the fields after the word (" + quote_token(xb, xe) +
         ") are numbers, so this is not a word containing spaces (give dim= if the dimension is not " +
         std::to_string(D) + ")";
}

// Parses one non-blank line (trailing whitespace already stripped) into out[0..D). Writes at most
// min(D, number of fields) values to `out`, also when the line turns out malformed.
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
    const bool first_is_number = nf == D && is_number<T>(wb, skip_token(wb, end));
    r.reason = first_is_number ? kMissingWord : kTooFew;
    if (want_detail) {
      const int64_t nv = std::max<int64_t>(nf - 1, 0);
      r.detail = first_is_number ? "found " + std::to_string(D) + " numbers but no word before them"
                                 : "expected a word and " + std::to_string(D) + " values, found " +
                                       std::to_string(nv) + (nv == 1 ? " value" : " values");
    }
    return r;
  }
  if (nf > D + 1) {
    const char *xb, *xe;
    bool all_numbers;
    extra_fields<T>(p, end, nf, D, xb, xe, all_numbers);
    if (all_numbers) {
      r.reason = kTooMany;
      if (want_detail) r.detail = too_many_detail(D, nf, xb, xe);
      return r;
    }
    we = xe;
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
      auto raw = std::from_chars(q, tok_end, v);
      const bool non_finite = raw.ec == std::errc() && raw.ptr == tok_end && !std::isfinite(v);
      r.reason = non_finite && !std::isnan(v) ? kOutOfRange : kNotNumber;
      if (want_detail)
        r.detail = non_finite ? "value " + quote_token(q, tok_end) + " (field " + std::to_string(nf - D + k + 1) +
                                    ") is not finite (NaN and infinite values are refused)"
                              : quote_token(q, tok_end) + " (field " + std::to_string(nf - D + k + 1) +
                                    ") is not a number";
      return r;
    }
    out[k] = v;
    q = tok_end;
  }
  return r;
}

struct ChunkOut {
  size_t begin = 0;         // byte range [begin, end) of whole lines
  size_t end = 0;
  int64_t lines = 0;        // pass 1
  int64_t first_line = 0;   // 0-based line index of the chunk's first line in the file
  int64_t first_row = 0;    // row slot where the chunk writes
  int64_t cap = 0;          // row slots of the chunk: min(lines, (end - begin) / (2D + 1))
  int64_t rows = 0;         // rows written
  std::string words;        // word bytes back to back
  std::vector<int64_t> word_len;
  std::vector<std::pair<int64_t, int64_t>> skipped;  // (0-based line index, reason)
  int64_t blank = 0, spaced = 0, invalid_utf8 = 0, crlf = 0;
  int64_t error_line = -1;  // strict mode: first bad line of this chunk
  std::string error;
  // the chunk's last row came from a last line without a newline (its line index, spaced, invalid UTF-8)
  bool last_row_unterminated = false, last_spaced = false, last_invalid = false;
  int64_t last_line = -1;
};

// Lines of [begin, end) of a text, one by one: [b, e) without its '\n'.
class LineWalker {
 public:
  LineWalker(const TextInput& in, size_t begin, size_t end, std::vector<char>& buf, size_t block = kHeadBlock)
      : blocks_(in, begin, end, block, buf) {}
  bool next(const char*& b, const char*& e, bool& has_newline) {
    if (q_ >= pe_) {
      if (!blocks_.next(pb_, pe_, off_, after_last_newline)) return false;
      q_ = pb_;
    }
    const char* le = line_end(q_, pe_);
    b = q_;
    e = le;
    has_newline = le < pe_;
    q_ = has_newline ? le + 1 : pe_;
    return true;
  }
  // offset just after the last line returned (after its '\n')
  size_t offset() const { return off_ + static_cast<size_t>(q_ - pb_); }

 private:
  TextInput::Blocks blocks_;
  const char *pb_ = nullptr, *pe_ = nullptr, *q_ = nullptr;
  size_t off_ = 0;
};

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
  WordListBuilder words(rows, nbytes);
  std::vector<std::pair<int64_t, int64_t>> skipped = extra_skipped;
  for (auto& c : chunks) {
    words.add(c.words.data(), c.word_len.data(), c.word_len.size());
    for (auto& s : c.skipped) skipped.emplace_back(s.first + 1, s.second);
    std::string().swap(c.words);
  }
  words.check_full();
  auto duplicates = find_duplicates(words.bytes.data_ptr<uint8_t>(), words.offsets.data_ptr<int64_t>(), rows);
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
  return {matrix, words.bytes, words.offsets, stats_t, skipped_t, duplicates};
}

std::string plural(int64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

template <typename T>
Result load_text(const InputFile& f, const std::string& path, int64_t dim, int64_t header_mode, int64_t limit,
                 bool skip_errors, int threads, at::ScalarType dtype) {
  std::vector<int64_t> stats(kNumStats, 0);
  stats[kHeaderRows] = stats[kHeaderDim] = -1;
  const TextInput in(&f);
  const size_t fsize = f.size();
  PooledBuffer head_buf;
  std::vector<char>& hb = head_buf.get();
  size_t p = 0;  // start of the data lines
  if (fsize >= 3) {
    char bom[3];
    f.read(0, bom, 3);
    if (std::memcmp(bom, "\xEF\xBB\xBF", 3) == 0) {
      p = 3;
      stats[kBom] = 1;
    }
  }
  // Header.
  Header h;
  int64_t header_lines = 0;
  {
    LineWalker w(in, p, fsize, hb);
    const char *b = nullptr, *e = nullptr;
    bool nl = false;
    const bool any = w.next(b, e, nl);
    const char* content_end = any ? rstrip(b, e) : b;
    bool is_header = any && header_mode != 0 && read_header(b, content_end, h);
    TORCH_CHECK_VALUE(header_mode != 1 || is_header, where(path, 1),
                      "expected a word2vec header 'N D' (two non-negative integers), found ",
                      any ? quote_token(b, content_end) : std::string("''"));
    if (is_header) {
      TORCH_CHECK_VALUE(h.dim > 0, where(path, 1), "the header gives dimension 0");
      TORCH_CHECK_VALUE(dim <= 0 || dim == h.dim, where(path, 1), "the header gives dimension ", h.dim,
                        " but dim=", dim, " was requested");
      stats[kHeaderRows] = h.rows;
      stats[kHeaderDim] = h.dim;
      header_lines = 1;
      if (nl && e > b && e[-1] == '\r') stats[kCrlfLines]++;
      p = w.offset();
    }
  }
  // Dimension: requested, else the header's, else the field count of more than half of the first data lines.
  int64_t D = dim > 0 ? dim : (h.present ? h.dim : -1);
  if (D <= 0) {
    // Each candidate D (a field count seen, minus the word) scores the lines whose fields fit it: D + 1 of
    // them, or more with extra fields that are not all numbers (a word with spaces). A malformed value does
    // not matter here: it is reported on its line once D is known. The best must fit more than half of
    // the lines and strictly more than any other candidate.
    struct VLine {
      int64_t line, nf, lead;  // lead: numbers in a row from field 2 on
    };
    std::vector<VLine> vl;
    int64_t line = header_lines;
    LineWalker w(in, p, fsize, hb);
    const char *b, *e;
    bool nl;
    while (vl.size() < 100 && w.next(b, e, nl)) {
      ++line;
      const char* ce = rstrip(b, e);
      const int64_t nf = count_fields(b, ce);
      if (nf == 0) continue;
      int64_t lead = 0;
      for (const char* t = skip_spaces(skip_token(skip_spaces(b, ce), ce), ce); t < ce; ++lead) {
        const char* te = skip_token(t, ce);
        if (!is_number<T>(t, te)) break;
        t = skip_spaces(te, ce);
      }
      vl.push_back({line, nf, lead});
    }
    TORCH_CHECK_VALUE(!vl.empty(), "load_vectors: '", path, "' has no data lines",
                      h.present ? " after its header" : (fsize == 0 ? " (the file is empty)" : ""));
    const int64_t voted = static_cast<int64_t>(vl.size());
    std::map<int64_t, std::pair<int64_t, std::vector<int64_t>>> by_nf;  // fields -> (lines, first few lines)
    for (auto& v : vl) {
      auto& x = by_nf[v.nf];
      if (x.first++ < 3) x.second.push_back(v.line);
    }
    int64_t best = 0, best_score = -1, second = -1;
    for (auto& [nf, x] : by_nf) {
      if (nf < 2) continue;
      const int64_t Dc = nf - 1;
      int64_t score = 0;
      for (auto& v : vl) score += v.nf == Dc + 1 || (v.nf > Dc + 1 && v.lead < v.nf - Dc - 1);
      if (score > best_score) {
        second = best_score;
        best = Dc;
        best_score = score;
      } else if (score > second) {
        second = score;
      }
    }
    TORCH_CHECK_VALUE(best_score >= 0, where(path, header_lines + 1),
                      "cannot infer the dimension: data lines have a single field (a word and no values?)");
    if (best_score * 2 <= voted || best_score == second) {
      std::vector<std::pair<int64_t, int64_t>> order;  // (-lines, fields)
      for (auto& [nf, x] : by_nf) order.emplace_back(-x.first, nf);
      std::sort(order.begin(), order.end());
      std::string counts;
      for (size_t i = 0; i < order.size() && i < 6; ++i) {
        const auto& x = by_nf[order[i].second];
        counts += (i ? "; " : "") + plural(order[i].second, "field") + " on " + plural(x.first, "line") + " (line";
        counts += x.second.size() > 1 ? "s " : " ";
        for (size_t k = 0; k < x.second.size(); ++k) counts += (k ? ", " : "") + std::to_string(x.second[k]);
        counts += x.first > static_cast<int64_t>(x.second.size()) ? ", ...)" : ")";
      }
      if (order.size() > 6) counts += "; ...";
      TORCH_CHECK_VALUE(false, "load_vectors: '", path, "': cannot infer the dimension: the first ",
                        plural(voted, "data line"), " do not agree on the number of fields (", counts,
                        ") and no dimension fits more than half of them better than any other; give dim= (the "
                        "number of values per row)");
    }
    D = best;
  } else if (h.present) {
    // a header that cannot be true is reported before anything is allocated
    const size_t data_bytes = fsize - p;
    const bool impossible = h.rows > 0 && data_bytes > 0 && static_cast<uint64_t>(D) > (data_bytes - 1) / 2;
    TORCH_CHECK_VALUE(!impossible, "load_vectors: '", path, "': the header promises ", plural(h.rows, "row"), " of ", D,
                      " values, but a row of ", D, " values takes at least ", D, "*2+1 bytes and the file has ",
                      data_bytes, " bytes after its header (", fsize, " bytes in all)");
    // A wrong header is reported on the first data line, not as an error on every line.
    LineWalker w(in, p, fsize, hb);
    const char *b, *e;
    bool nl;
    int64_t line = header_lines;
    while (w.next(b, e, nl)) {
      ++line;
      const char* ce = rstrip(b, e);
      const int64_t nf = count_fields(b, ce);
      if (nf > 0) {
        bool too_many = false;
        if (nf > D + 1) {
          const char *xb, *xe;
          extra_fields<T>(b, ce, nf, D, xb, xe, too_many);
        }
        TORCH_CHECK_VALUE((nf >= D + 1 && !too_many) || skip_errors, where(path, line), "the header gives dimension ",
                          D, " but this line has ", nf - 1, " values");
        break;
      }
    }
  }
  stats[kDim] = D;
  // limit: cut the data region after `limit` non-blank lines.
  size_t end = fsize;
  if (limit >= 0) {
    LineWalker w(in, p, fsize, hb);
    const char *b, *e;
    bool nl;
    size_t q = p;
    for (int64_t n = 0; n < limit && w.next(b, e, nl);) {
      if (skip_spaces(b, e) != e) ++n;
      q = w.offset();
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
    size_t b = p;
    while (b < end) {
      size_t e = b + std::min<size_t>(step, end - b);
      if (e < end) {
        const size_t nl = in.find('\n', e, end);
        e = nl < end ? nl + 1 : end;
      }
      ChunkOut c;
      c.begin = b;
      c.end = e;
      chunks.push_back(std::move(c));
      b = e;
    }
  }
  const int64_t nc = static_cast<int64_t>(chunks.size());
  const int workers = dynamic_workers(nc, threads);
  std::vector<PooledBuffer> bufs(workers);
  // Pass 1: lines per chunk.
  run_dynamic_workers(nc, threads, [&](int w, int64_t i) {
    auto& c = chunks[i];
    TextInput::Blocks blocks(in, c.begin, c.end, kReadBlock, bufs[w].get());
    const char *b, *e;
    size_t off;
    int64_t n = 0;
    while (blocks.next(b, e, off, after_last_newline)) {
      for (const char* q = b; q < e;) {
        const void* nl = std::memchr(q, '\n', e - q);
        ++n;
        q = nl ? static_cast<const char*>(nl) + 1 : e;
      }
    }
    c.lines = n;
  });
  int64_t total_lines = header_lines, slots = 0;
  const uint64_t row_min_bytes = 2 * static_cast<uint64_t>(D) + 1;
  for (auto& c : chunks) {
    c.first_line = total_lines;
    c.first_row = slots;
    c.cap = std::min<int64_t>(c.lines, static_cast<int64_t>((c.end - c.begin) / row_min_bytes));
    total_lines += c.lines;
    slots += c.cap;
  }
  stats[kLines] = total_lines;
  if (end > 0 && end == fsize && in.byte_at(end - 1) != '\n') stats[kTruncatedLastLine] = 1;
  auto matrix = empty_large({slots, D}, at::TensorOptions().dtype(dtype));
  T* M = matrix.data_ptr<T>();
  std::atomic<int64_t> first_error_line{std::numeric_limits<int64_t>::max()};
  // Pass 2: parse.
  run_dynamic_workers(nc, threads, [&](int w, int64_t i) {
    auto& c = chunks[i];
    int64_t line = c.first_line;
    T* const slot0 = M + c.first_row * D;
    std::vector<T> scratch;  // for lines beyond the chunk's slots, which cannot be valid rows
    TextInput::Blocks blocks(in, c.begin, c.end, kReadBlock, bufs[w].get());
    const char *pb, *pe;
    size_t off;
    bool stop = false;
    while (!stop && blocks.next(pb, pe, off, after_last_newline)) {
      for (const char* q = pb; q < pe; ++line) {
        if (!skip_errors && line > first_error_line.load(std::memory_order_relaxed)) {
          stop = true;
          break;
        }
        const char* le = line_end(q, pe);
        const bool has_nl = le < pe;
        const char* next = has_nl ? le + 1 : pe;
        const char* ce = rstrip(q, le);
        if (has_nl && le > q && le[-1] == '\r') c.crlf++;
        if (skip_spaces(q, ce) == ce) {
          c.blank++;
          q = next;
          continue;
        }
        T* out = slot0 + c.rows * D;
        if (c.rows >= c.cap) {
          scratch.resize(static_cast<size_t>(std::min<int64_t>(D, (ce - q) / 2 + 1)));
          out = scratch.data();
        }
        LineResult r = parse_line<T>(q, ce, D, out, !skip_errors);
        TORCH_INTERNAL_ASSERT(r.reason != kOk || c.rows < c.cap, "load_vectors: row slots exceeded");
        const bool unterminated_last = !has_nl && c.end == end && stats[kTruncatedLastLine];
        if (r.reason != kOk) {
          if (skip_errors) {
            c.skipped.emplace_back(line, r.reason);
          } else {
            c.error_line = line;
            c.error = r.detail + (unterminated_last ? " (the last line has no newline: truncated file?)" : "");
            int64_t cur = first_error_line.load();
            while (line < cur && !first_error_line.compare_exchange_weak(cur, line)) {}
            stop = true;
            break;
          }
        } else {
          const auto* wb = reinterpret_cast<const unsigned char*>(r.word_begin);
          const size_t wl = r.word_end - r.word_begin;
          c.words.append(r.word_begin, wl);
          c.word_len.push_back(static_cast<int64_t>(wl));
          const bool bad_utf8 = !valid_utf8(wb, wl);
          if (r.spaced) c.spaced++;
          if (bad_utf8) c.invalid_utf8++;
          ++c.rows;
          if (unterminated_last) {
            c.last_row_unterminated = true;
            c.last_spaced = r.spaced;
            c.last_invalid = bad_utf8;
            c.last_line = line;
          }
        }
        q = next;
      }
    }
  });
  f.check_unchanged();  // a file changed under the parse gets that error, not one about a mangled line
  if (!skip_errors) {
    for (auto& c : chunks) {
      if (c.error_line >= 0 && c.error_line == first_error_line.load())
        TORCH_CHECK_VALUE(false, where(path, c.error_line + 1), c.error);
    }
  }
  // The header's promise: min(N, limit) rows (skipped lines count as rows in skip mode).
  if (h.present) {
    const int64_t want = limit >= 0 ? std::min(limit, h.rows) : h.rows;
    int64_t found = 0;
    for (auto& c : chunks) found += c.rows + static_cast<int64_t>(c.skipped.size());
    if (found < want) {
      ChunkOut* last = chunks.empty() ? nullptr : &chunks.back();
      const bool cut_row = last != nullptr && last->last_row_unterminated;
      if (!skip_errors) {
        std::string how;
        if (found == 0)
          how = "the file has no data lines after its header";
        else if (cut_row)
          how = "the file ends after " + plural(found, "row") + " (line " + std::to_string(last->last_line + 1) +
                ", the last, has no newline: its row is probably cut off and its last value incomplete)";
        else
          how = "the file ends after " + plural(found, "row") + " (line " + std::to_string(total_lines) +
                " is the last: truncated file?)";
        TORCH_CHECK_VALUE(false, "load_vectors: '", path, "': the header promises ", plural(h.rows, "row"), " of ", D,
                          " values", limit >= 0 && limit < h.rows ? " (limit=" + std::to_string(limit) + ")" : "",
                          ", but ", how);
      }
      if (cut_row) {  // probably cut: skipped as a truncated record
        last->rows--;
        last->words.resize(last->words.size() - static_cast<size_t>(last->word_len.back()));
        last->word_len.pop_back();
        last->spaced -= last->last_spaced;
        last->invalid_utf8 -= last->last_invalid;
        last->skipped.emplace_back(last->last_line, kTruncatedRecord);
      }
      // the missing rows: one entry at the line after the last
      if (last != nullptr) last->skipped.emplace_back(total_lines, kTruncatedRecord);
    }
  }
  // Compact: move each chunk's rows down to follow the previous chunk's.
  int64_t rows = 0;
  std::vector<std::pair<int64_t, int64_t>> extra;
  if (h.present && chunks.empty()) {
    const int64_t want = limit >= 0 ? std::min(limit, h.rows) : h.rows;
    if (want > 0) {  // skip mode (strict mode raised above): a header-only file
      extra.emplace_back(total_lines + 1, kTruncatedRecord);
    }
  }
  for (auto& c : chunks) {
    if (c.first_row != rows && c.rows > 0)
      std::memmove(M + rows * D, M + c.first_row * D, sizeof(T) * c.rows * D);
    rows += c.rows;
    stats[kBlankLines] += c.blank;
    stats[kSpacedWords] += c.spaced;
    stats[kInvalidUtf8] += c.invalid_utf8;
    stats[kCrlfLines] += c.crlf;
  }
  return finish(matrix, rows, chunks, stats, extra);
}

// First element of v[0..n) that is NaN or infinite, or -1. Runs over a row just copied (in cache).
inline int64_t first_non_finite(const float* v, int64_t n) {
  uint32_t any = 0;
  for (int64_t k = 0; k < n; ++k) {
    uint32_t bits;
    std::memcpy(&bits, v + k, 4);
    any |= (bits & 0x7F800000u) == 0x7F800000u;
  }
  if (!any) return -1;
  for (int64_t k = 0; k < n; ++k)
    if (!std::isfinite(v[k])) return k;
  return -1;
}

template <typename T>
Result load_binary(const InputFile& f, const std::string& path, int64_t dim, int64_t limit, bool skip_errors,
                   int threads, at::ScalarType dtype) {
  std::vector<int64_t> stats(kNumStats, 0);
  const size_t fsize = f.size();
  TORCH_CHECK_VALUE(fsize > 0, "load_vectors: '", path, "' is empty");
  PooledBuffer pbuf;
  SeqReader rd(f, 0, pbuf.get());
  Header h;
  {
    const size_t a = rd.ensure(kHeadBlock);
    const char* p = rd.data();
    const char* le = line_end(p, p + a);
    TORCH_CHECK_VALUE(le < p + a && read_header(p, rstrip(p, le), h), "load_vectors: '", path,
                      "' does not start with a word2vec binary header 'N D\\n' (found ", quote_token(p, le), ")");
    rd.advance(static_cast<size_t>(le - p) + 1);
  }
  TORCH_CHECK_VALUE(h.dim > 0, "load_vectors: '", path, "': the header gives dimension 0");
  TORCH_CHECK_VALUE(dim <= 0 || dim == h.dim, "load_vectors: '", path, "': the header gives dimension ", h.dim,
                    " but dim=", dim, " was requested");
  const int64_t D = h.dim;
  stats[kHeaderRows] = h.rows;
  stats[kHeaderDim] = h.dim;
  stats[kDim] = D;
  stats[kLines] = 1;
  const int64_t want = limit >= 0 ? std::min(limit, h.rows) : h.rows;
  // Every record takes at least 4D + 1 bytes (a space and D float32; the word may be empty): a header that
  // promises more than the file can hold is refused before anything is allocated.
  const size_t body = fsize - rd.offset();
  const uint64_t rec_min = 4 * static_cast<uint64_t>(D) + 1;  // D <= int64 max: no overflow in uint64
  const int64_t fit = D > static_cast<int64_t>(body / 4) ? 0 : static_cast<int64_t>(body / rec_min);
  TORCH_CHECK_VALUE(want <= fit || skip_errors, "load_vectors: '", path, "': the header promises ",
                    plural(h.rows, "record"), " of ", D, " float32 values",
                    limit >= 0 && limit < h.rows ? " (limit=" + std::to_string(limit) + ")" : "",
                    ", but each record takes at least 4*", D, "+1 bytes and the file has ", body,
                    " bytes after its header (room for at most ", plural(fit, "record"), ", ", fsize,
                    " bytes in all): truncated, or not a word2vec binary file");
  const int64_t alloc_rows = std::min(want, fit);
  const size_t vec_bytes = sizeof(float) * static_cast<size_t>(D);
  std::vector<ChunkOut> chunks(1);
  auto& c = chunks[0];
  std::vector<std::pair<int64_t, int64_t>> skipped;
  auto matrix = empty_large({alloc_rows, D}, at::TensorOptions().dtype(dtype));
  T* M = matrix.data_ptr<T>();
  constexpr size_t kMaxWord = size_t(1) << 16;
  int64_t rows = 0;
  for (int64_t r = 0; r < want; ++r) {
    while (rd.ensure(1) > 0 && (*rd.data() == '\n' || *rd.data() == '\r')) rd.advance(1);
    const size_t rec_at = rd.offset();
    size_t a = rd.ensure(kMaxWord + 1);
    const void* sp = std::memchr(rd.data(), ' ', std::min(a, kMaxWord));
    TORCH_CHECK_VALUE(sp != nullptr || a <= kMaxWord, "load_vectors: '", path, "': record ", r + 1, " of ", h.rows,
                      " (byte offset ", rec_at, ") has no space within ", kMaxWord,
                      " bytes: a word that long, or not a word2vec binary file");
    const size_t wl = sp ? static_cast<size_t>(static_cast<const char*>(sp) - rd.data()) : 0;
    if (sp != nullptr) a = rd.ensure(wl + 1 + vec_bytes);
    if (sp == nullptr || a < wl + 1 + vec_bytes) {
      TORCH_CHECK_VALUE(skip_errors, "load_vectors: '", path, "': the header promises ", plural(h.rows, "record"),
                        " of ", D, " float32 values, but the file ends after ", plural(r, "complete record"),
                        ": record ", r + 1, " of ", h.rows, " (byte offset ", rec_at,
                        ") is truncated, the file ends before its ", D, " float32 values");
      skipped.emplace_back(r + 1, kTruncatedRecord);
      break;
    }
    TORCH_INTERNAL_ASSERT(rows < alloc_rows, "load_vectors: record slots exceeded");
    const char* word = rd.data();
    const char* vec = word + wl + 1;
    T* row = M + rows * D;
    int64_t bad;
    if constexpr (std::is_same_v<T, float>) {
      std::memcpy(row, vec, vec_bytes);
      bad = first_non_finite(row, D);
    } else {
      for (int64_t k = 0; k < D; ++k) {
        float v;
        std::memcpy(&v, vec + sizeof(float) * k, sizeof(float));
        row[k] = static_cast<T>(v);
      }
      bad = -1;
      for (int64_t k = 0; k < D && bad < 0; ++k)
        if (!std::isfinite(row[k])) bad = k;
    }
    if (wl == 0) {  // a record that starts with its space: no word to key the vector by
      TORCH_CHECK_VALUE(skip_errors, "load_vectors: '", path, "': record ", r + 1, " of ", h.rows, " (byte offset ",
                        rec_at, ") has an empty word (the record starts with a space)");
      skipped.emplace_back(r + 1, kMissingWord);
    } else if (bad >= 0) {
      const bool nan = std::isnan(row[bad]);
      TORCH_CHECK_VALUE(skip_errors, "load_vectors: '", path, "': record ", r + 1, " (word ",
                        quote_token(word, word + wl), ", byte offset ", rec_at, ") has a non-finite value (",
                        nan ? "NaN" : "infinity", ") at position ", bad, " (NaN and infinite values are refused)");
      skipped.emplace_back(r + 1, nan ? kNotNumber : kOutOfRange);
    } else {
      c.words.append(word, wl);
      c.word_len.push_back(static_cast<int64_t>(wl));
      if (!valid_utf8(reinterpret_cast<const unsigned char*>(word), wl)) c.invalid_utf8++;
      ++rows;
    }
    rd.advance(wl + 1 + vec_bytes);
  }
  f.check_unchanged();
  (void)threads;
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
  TORCH_CHECK_VALUE(limit >= -1, "load_vectors: limit must be -1 (all rows) or >= 0, got ", limit);
  TORCH_CHECK_VALUE(num_threads >= 0, "load_vectors: num_threads must be >= 0 (0: torch.get_num_threads()), got ",
                    num_threads);
  InputFile f(path, "load_vectors");
  const int threads = resolve_threads(num_threads, "load_vectors");
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
