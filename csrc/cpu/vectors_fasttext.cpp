// embedfast::load_fasttext — reader of fastText's binary model format (.bin), and
// embedfast::fasttext_ngram_buckets — the n-gram buckets of words by fastText's rule (embedfast/subwords.h).
//
// The .bin layout (fastText's FastText::saveModel; all integers and floats little-endian, as fastText writes them
// on every platform it runs on):
//   int32 magic 793712314, int32 version (<= 12)
//   args: int32 dim, ws, epoch, minCount, neg, wordNgrams, loss (1 hs, 2 ns, 3 softmax, 4 ova),
//         model (1 cbow, 2 skipgram, 3 supervised), bucket, minn, maxn, lrUpdateRate; float64 t (sampling)
//   dictionary: int32 size, nwords, nlabels; int64 ntokens, pruneidx_size (-1: not pruned); then `size` entries
//         (the word's bytes, a NUL, int64 count, int8 type: 0 word, 1 label; the nwords words come first);
//         then pruneidx_size pairs of int32 (pruned, i.e. quantised, models only)
//   bool quant_input (1: a product-quantised .ftz matrix, refused here with an error saying so)
//   input matrix: int64 rows (= nwords + bucket), int64 cols (= dim), rows*cols float32: the word rows, then
//         one row per hash bucket
//   bool qout; output matrix: int64 rows, int64 cols (= dim), rows*cols float32 (nwords rows for cbow/skipgram,
//         nlabels for supervised models)
// Version 11 supervised models used no character n-grams: their maxn is taken as 0 (as fastText does).
//
// One pass: the header and dictionary are walked with a sequential pread reader (embedfast/input_file.h, never
// mmap), every count and size checked against the bytes the file has before anything is allocated, then the
// matrices are read by several threads with pread straight into their tensors (each piece checked for NaN and
// infinity while it is in cache) and the file is checked unchanged at the end. Every refusal is a ValueError
// naming the file, the byte offset and what was expected there; nothing in a hostile file can crash the reader.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "embedfast/alloc.h"
#include "embedfast/common.h"
#include "embedfast/input_file.h"
#include "embedfast/parallel.h"
#include "embedfast/subwords.h"

namespace embedfast {
namespace {

constexpr int32_t kMagic = 793712314;
constexpr int32_t kMaxVersion = 12;
constexpr size_t kMaxWordBytes = size_t(1) << 20;  // a dictionary word longer than this is taken as corruption
constexpr int64_t kMaxDim = int64_t(1) << 20;
constexpr size_t kMatrixPiece = size_t(4) << 20;  // bytes of matrix per parallel read

// Order must match FASTTEXT_HEADER in embedfast/vectors/ops.py.
enum Field {
  kVersion, kDim, kWs, kEpoch, kMinCount, kNeg, kWordNgrams, kLoss, kModel, kBucket, kMinn, kMaxn,
  kLrUpdateRate, kSampleBits, kNwords, kNlabels, kNtokens, kOutputRows, kWordsRead, kQout, kInvalidUtf8,
  kMatrixOffset, kNumFields
};

bool valid_utf8(const unsigned char* s, size_t n) {
  // decoded by Python with surrogateescape anyway; this only counts the words that need it
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    const size_t len = c >= 0xC2 && c <= 0xDF ? 2 : (c >= 0xE0 && c <= 0xEF ? 3 : (c >= 0xF0 && c <= 0xF4 ? 4 : 0));
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return false;
    if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) || (c == 0xF0 && s[i + 1] < 0x90) ||
        (c == 0xF4 && s[i + 1] >= 0x90))
      return false;
    i += len;
  }
  return true;
}

// The sequential part of the reading: fixed-size little-endian fields and NUL-terminated words, each read
// checked to be inside the file, errors naming the offset and the field.
class Walker {
 public:
  Walker(const InputFile& f, std::vector<char>& buf) : f_(f), rd_(f, 0, buf, size_t(1) << 20) {}
  size_t offset() const { return rd_.offset(); }
  size_t left() const { return f_.size() - rd_.offset(); }

  [[noreturn]] void fail(size_t at, const std::string& msg) const {
    TORCH_CHECK_VALUE(false, "load_fasttext: '", f_.path(), "': byte offset ", at, ": ", msg);
  }

  // n bytes at the current offset (valid until the next read), or an error naming what(), a function giving
  // the field's description (built only on failure).
  template <typename What>
  const char* take(size_t n, What&& what) {
    const size_t at = offset();
    if (rd_.ensure(n) < n)
      fail(at, "the file ends (after " + std::to_string(f_.size()) + " bytes) where " + std::string(what()) +
                   " (" + std::to_string(n) + " bytes) was expected: truncated");
    const char* p = rd_.data();
    rd_.advance(n);
    return p;
  }

  template <typename T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof(T), [&] { return what; }), sizeof(T));
    return v;
  }

  bool read_bool(const char* what) {
    const size_t at = offset();
    const auto b = read<uint8_t>(what);
    if (b > 1) fail(at, std::string(what) + " must be a bool (0 or 1), got " + std::to_string(b));
    return b == 1;
  }

  // The bytes of a NUL-terminated word (valid until the next read), n its length; entry/entries name it.
  const char* read_word(size_t& n, int64_t entry, int64_t entries) {
    const size_t at = offset();
    size_t avail = rd_.ensure(size_t(64) << 10);
    const void* z = avail ? std::memchr(rd_.data(), 0, avail) : nullptr;
    while (z == nullptr && avail < left() && avail <= kMaxWordBytes) {
      avail = rd_.ensure(std::min(avail * 2, kMaxWordBytes + 1));
      z = std::memchr(rd_.data(), 0, avail);
    }
    if (z == nullptr) {
      if (avail > kMaxWordBytes)
        fail(at, entry_name(entry, entries) + ": no NUL ends its word within " + std::to_string(kMaxWordBytes) +
                     " bytes (a word that long is taken as a corrupt dictionary)");
      fail(at, entry_name(entry, entries) + ": the file ends before the NUL that ends its word: truncated");
    }
    n = static_cast<size_t>(static_cast<const char*>(z) - rd_.data());
    if (n == 0) fail(at, entry_name(entry, entries) + " has an empty word");
    return rd_.data();
  }

  static std::string entry_name(int64_t entry, int64_t entries) {
    return "dictionary entry " + std::to_string(entry + 1) + " of " + std::to_string(entries);
  }
  void skip(size_t n) { rd_.advance(n); }

 private:
  const InputFile& f_;
  SeqReader rd_;
};

std::string mib(size_t bytes) { return std::to_string(bytes) + " bytes"; }

// A matrix's "int64 rows, int64 cols" header, checked against what it must be and against the bytes left.
void read_matrix_header(Walker& w, const char* name, int64_t want_rows, int64_t dim, int64_t& rows) {
  const size_t at = w.offset();
  rows = w.read<int64_t>((std::string("the row count of the ") + name).c_str());
  const int64_t cols = w.read<int64_t>((std::string("the column count of the ") + name).c_str());
  if (want_rows >= 0 && rows != want_rows)
    w.fail(at, std::string("the ") + name + " has " + std::to_string(rows) + " rows, expected " +
                   std::to_string(want_rows) + " (nwords + bucket from the header and dictionary)");
  if (rows < 0) w.fail(at, std::string("the ") + name + " has a negative row count " + std::to_string(rows));
  if (cols != dim)
    w.fail(at + 8, std::string("the ") + name + " has " + std::to_string(cols) + " columns, expected dim = " +
                       std::to_string(dim) + " from the header");
  const uint64_t row_bytes = 4 * static_cast<uint64_t>(dim);
  if (static_cast<uint64_t>(rows) > w.left() / row_bytes)
    w.fail(w.offset(), std::string("the ") + name + " needs " + std::to_string(rows) + " x " +
                           std::to_string(dim) + " float32 (" +
                           (static_cast<uint64_t>(rows) > (uint64_t(1) << 60) / row_bytes
                                ? std::string("more than 2^60 bytes")
                                : mib(static_cast<size_t>(rows) * row_bytes)) +
                           "), but the file has " + mib(w.left()) + " left: truncated");
}

struct Piece {
  char* dst;
  size_t file_offset, nbytes;
  int64_t first_row;  // row of the input matrix (or output matrix when output) the piece starts at
  bool output;
};

// Reads the pieces on `threads` threads; returns the first non-finite value as (matrix row, column, is NaN,
// output?) or row -1 when all are finite.
struct BadValue {
  int64_t row = -1, col = -1;
  bool nan = false, output = false;
};

BadValue read_pieces(const InputFile& f, const std::vector<Piece>& pieces, int64_t dim, int threads) {
  std::vector<BadValue> bad(pieces.size());
  run_dynamic(static_cast<int64_t>(pieces.size()), threads, [&](int64_t i) {
    const Piece& p = pieces[i];
    f.read(p.file_offset, p.dst, p.nbytes);
    const float* v = reinterpret_cast<const float*>(p.dst);
    const size_t n = p.nbytes / 4;
    uint32_t any = 0;
    for (size_t k = 0; k < n; ++k) {
      uint32_t bits;
      std::memcpy(&bits, v + k, 4);
      any |= (bits & 0x7F800000u) == 0x7F800000u;
    }
    if (!any) return;
    for (size_t k = 0; k < n; ++k)
      if (!std::isfinite(v[k])) {
        bad[i] = {p.first_row + static_cast<int64_t>(k) / dim, static_cast<int64_t>(k) % dim, std::isnan(v[k]),
                  p.output};
        return;
      }
  });
  for (const auto& b : bad)
    if (b.row >= 0) return b;
  return {};
}

// Splits `rows` rows of `dim` floats at dst (file offset `at`) into pieces of about kMatrixPiece bytes.
void add_pieces(std::vector<Piece>& out, float* dst, size_t at, int64_t rows, int64_t dim, int64_t first_row,
                bool output) {
  const size_t row_bytes = 4 * static_cast<size_t>(dim);
  const int64_t per = std::max<int64_t>(1, static_cast<int64_t>(kMatrixPiece / row_bytes));
  for (int64_t r = 0; r < rows; r += per) {
    const int64_t n = std::min(per, rows - r);
    out.push_back({reinterpret_cast<char*>(dst + r * dim), at + static_cast<size_t>(r) * row_bytes,
                   static_cast<size_t>(n) * row_bytes, first_row + r, output});
  }
}

using LoadResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                              at::Tensor>;

LoadResult load_fasttext_cpu(c10::string_view path_sv, int64_t limit, bool output, int64_t num_threads) {
  const std::string path(path_sv.data(), path_sv.size());
  TORCH_CHECK_VALUE(limit >= -1, "load_fasttext: limit must be -1 (all words) or >= 0, got ", limit);
  const int threads = resolve_threads(num_threads, "load_fasttext");
  InputFile f(path, "load_fasttext");
  PooledBuffer pbuf;
  Walker w(f, pbuf.get());
  std::vector<int64_t> h(kNumFields, 0);

  // ---- magic, version, args ----
  if (f.size() < 8) w.fail(0, "a fastText model starts with 8 bytes (magic, version); the file has " +
                                  mib(f.size()));
  const int32_t magic = w.read<int32_t>("the magic number");
  if (magic != kMagic)
    w.fail(0, "not a fastText binary model: it starts with " + std::to_string(magic) + ", not fastText's magic " +
                  std::to_string(kMagic) + " (files of fastText versions before 0.2, without a magic number, are "
                  "not read)");
  const int32_t version = w.read<int32_t>("the format version");
  if (version < 1 || version > kMaxVersion)
    w.fail(4, "format version " + std::to_string(version) + ": this reader knows versions up to " +
                  std::to_string(kMaxVersion) + " (fastText's own is " + std::to_string(kMaxVersion) + ")");
  h[kVersion] = version;
  const char* names[] = {"dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model", "bucket",
                         "minn", "maxn", "lrUpdateRate"};
  const Field fields[] = {kDim, kWs, kEpoch, kMinCount, kNeg, kWordNgrams, kLoss, kModel, kBucket, kMinn, kMaxn,
                          kLrUpdateRate};
  size_t field_at[12];
  for (int i = 0; i < 12; ++i) {
    field_at[i] = w.offset();
    h[fields[i]] = w.read<int32_t>((std::string("the argument ") + names[i]).c_str());
  }
  const double t = w.read<double>("the argument t (sampling threshold, float64)");
  std::memcpy(&h[kSampleBits], &t, 8);
  const int64_t D = h[kDim], bucket = h[kBucket];
  if (D < 1 || D > kMaxDim) w.fail(field_at[0], "dim must be from 1 to " + std::to_string(kMaxDim) + ", got " +
                                                    std::to_string(D));
  if (h[kLoss] < 1 || h[kLoss] > 4)
    w.fail(field_at[6], "loss must be 1 (hs), 2 (ns), 3 (softmax) or 4 (ova), got " + std::to_string(h[kLoss]));
  if (h[kModel] < 1 || h[kModel] > 3)
    w.fail(field_at[7], "model must be 1 (cbow), 2 (skipgram) or 3 (supervised), got " + std::to_string(h[kModel]));
  if (bucket < 0) w.fail(field_at[8], "bucket must be >= 0, got " + std::to_string(bucket));
  if (h[kMinn] < 0) w.fail(field_at[9], "minn must be >= 0, got " + std::to_string(h[kMinn]));
  if (h[kMaxn] < 0) w.fail(field_at[10], "maxn must be >= 0, got " + std::to_string(h[kMaxn]));
  if (version == 11 && h[kModel] == 3) h[kMaxn] = 0;  // old supervised models: no character n-grams

  // ---- dictionary ----
  const size_t dict_at = w.offset();
  const int64_t size = w.read<int32_t>("the dictionary size");
  const int64_t nwords = w.read<int32_t>("the dictionary's word count (nwords)");
  const int64_t nlabels = w.read<int32_t>("the dictionary's label count (nlabels)");
  h[kNtokens] = w.read<int64_t>("the dictionary's token count (ntokens)");
  const int64_t prune_size = w.read<int64_t>("the dictionary's pruned-index size");
  if (size < 0 || nwords < 0 || nlabels < 0 || nwords + nlabels != size)
    w.fail(dict_at, "the dictionary says " + std::to_string(size) + " entries = " + std::to_string(nwords) +
                        " words + " + std::to_string(nlabels) + " labels, which does not add up");
  // an entry takes at least 11 bytes (one byte of word, its NUL, count, type)
  if (static_cast<uint64_t>(size) > w.left() / 11)
    w.fail(dict_at, "the dictionary promises " + std::to_string(size) + " entries (11 bytes each at least), but "
                        "the file has " + mib(w.left()) + " left: truncated");
  h[kNwords] = nwords;
  h[kNlabels] = nlabels;
  const int64_t keep = limit >= 0 ? std::min(limit, nwords) : nwords;
  h[kWordsRead] = keep;
  std::string word_bytes;
  std::vector<int64_t> offsets{0}, counts;
  std::vector<int8_t> types;
  offsets.reserve(keep + nlabels + 1);
  counts.reserve(keep + nlabels);
  types.reserve(keep + nlabels);
  for (int64_t i = 0; i < size; ++i) {
    const size_t at = w.offset();
    size_t n = 0;
    const char* word = w.read_word(n, i, size);
    const bool kept = i < keep || i >= nwords;
    if (kept) {
      word_bytes.append(word, n);
      offsets.push_back(static_cast<int64_t>(word_bytes.size()));
      if (!valid_utf8(reinterpret_cast<const unsigned char*>(word), n)) h[kInvalidUtf8]++;
    }
    w.skip(n + 1);
    const size_t count_at = w.offset();
    const char* ct = w.take(9, [&] { return Walker::entry_name(i, size) + ": its count (int64) and type (int8)"; });
    int64_t count;
    std::memcpy(&count, ct, 8);
    const int8_t type = static_cast<int8_t>(ct[8]);
    if (count < 0) w.fail(count_at, Walker::entry_name(i, size) + " has a negative count " + std::to_string(count));
    if (type != 0 && type != 1)
      w.fail(count_at + 8, Walker::entry_name(i, size) + " has type " + std::to_string(type) +
                               "; fastText's types are 0 (word) and 1 (label)");
    if ((type == 0) != (i < nwords))
      w.fail(at, Walker::entry_name(i, size) + (type == 0 ? " is a word" : " is a label") + ", but the dictionary's first " +
                     std::to_string(nwords) + " entries must be its words and the rest its labels");
    if (kept) {
      counts.push_back(count);
      types.push_back(type);
    }
  }
  if (prune_size >= 0) {
    // pruned dictionaries come only with quantised matrices (fastText refuses the other case too)
    if (static_cast<uint64_t>(prune_size) > w.left() / 8)
      w.fail(w.offset(), "the pruned index promises " + std::to_string(prune_size) + " pairs (8 bytes each), but "
                             "the file has " + mib(w.left()) + " left: truncated");
    for (int64_t i = 0; i < prune_size; ++i) w.read<int64_t>("a pruned-index pair");
  }
  const size_t quant_at = w.offset();
  if (w.read_bool("the quantised-input flag"))
    w.fail(quant_at, "this is a quantised fastText model (.ftz: the input matrix is product-quantised), which "
                     "embedfast does not decode; load the full .bin model, or use fasttext's own load_model");
  if (prune_size >= 0)
    w.fail(dict_at, "the dictionary is pruned (pruned-index size " + std::to_string(prune_size) + ") but the "
                    "matrix is not quantised: an invalid model (fastText refuses it too)");

  // ---- matrices ----
  int64_t in_rows = 0;
  if (nwords > std::numeric_limits<int64_t>::max() - bucket) w.fail(w.offset(), "nwords + bucket overflows");
  read_matrix_header(w, "input matrix", nwords + bucket, D, in_rows);
  const size_t input_at = w.offset();
  h[kMatrixOffset] = static_cast<int64_t>(input_at);
  const size_t row_bytes = 4 * static_cast<size_t>(D);
  // the rest is read with pread by offset: walk past the input matrix without reading it
  size_t after_input = input_at + static_cast<size_t>(in_rows) * row_bytes;
  std::vector<char> tail_buf;
  SeqReader tail(f, after_input, tail_buf, 64);
  auto tail_read = [&](size_t n, const char* what) -> const char* {
    if (tail.ensure(n) < n)
      w.fail(tail.offset(), std::string("the file ends (after ") + std::to_string(f.size()) + " bytes) where " +
                                what + " was expected: truncated");
    const char* p = tail.data();
    tail.advance(n);
    return p;
  };
  const size_t qout_at = tail.offset();
  const uint8_t qout = static_cast<uint8_t>(*tail_read(1, "the quantised-output flag"));
  if (qout > 1) w.fail(qout_at, "the quantised-output flag must be a bool (0 or 1), got " + std::to_string(qout));
  h[kQout] = qout;
  int64_t out_rows, out_cols;
  const size_t out_hdr_at = tail.offset();
  std::memcpy(&out_rows, tail_read(8, "the row count of the output matrix"), 8);
  std::memcpy(&out_cols, tail_read(8, "the column count of the output matrix"), 8);
  const size_t output_at = tail.offset();
  if (out_rows < 0) w.fail(out_hdr_at, "the output matrix has a negative row count " + std::to_string(out_rows));
  if (out_cols != D)
    w.fail(out_hdr_at + 8, "the output matrix has " + std::to_string(out_cols) + " columns, expected dim = " +
                               std::to_string(D) + " from the header");
  const size_t left = f.size() - output_at;
  if (static_cast<uint64_t>(out_rows) > left / row_bytes || static_cast<size_t>(out_rows) * row_bytes != left)
    w.fail(output_at, "the output matrix of " + std::to_string(out_rows) + " x " + std::to_string(D) +
                          " float32 should end the file, but " + mib(left) + " are left after its header (" +
                          (static_cast<uint64_t>(out_rows) > left / row_bytes ? "truncated" : "trailing bytes") + ")");
  h[kOutputRows] = out_rows;

  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto word_rows = empty_large({keep, D}, opts);
  auto ngram_rows = empty_large({bucket, D}, opts);
  auto out_m = output ? empty_large({out_rows, D}, opts) : at::empty({0, D}, opts);
  std::vector<Piece> pieces;
  add_pieces(pieces, word_rows.data_ptr<float>(), input_at, keep, D, 0, false);
  add_pieces(pieces, ngram_rows.data_ptr<float>(), input_at + static_cast<size_t>(nwords) * row_bytes, bucket, D,
             nwords, false);
  if (output) add_pieces(pieces, out_m.data_ptr<float>(), output_at, out_rows, D, 0, true);
  const BadValue bad = read_pieces(f, pieces, D, threads);
  f.check_unchanged();
  if (bad.row >= 0) {
    std::string what;
    if (bad.output) {
      what = "output matrix row " + std::to_string(bad.row);
    } else if (bad.row < nwords) {
      const int64_t r = bad.row;
      what = "input matrix row " + std::to_string(r) + " (word " +
             std::string("'") + show_bytes(word_bytes.data() + offsets[r], word_bytes.data() + offsets[r + 1]) + "')";
    } else {
      what = "input matrix row " + std::to_string(bad.row) + " (n-gram bucket " + std::to_string(bad.row - nwords) + ")";
    }
    const size_t at = (bad.output ? output_at : input_at) + static_cast<size_t>(bad.row) * row_bytes + 4 * bad.col;
    w.fail(at, what + " has a non-finite value (" + (bad.nan ? "NaN" : "infinity") + ") at column " +
                   std::to_string(bad.col) + " (NaN and infinite values are refused)");
  }

  auto wb = at::empty({static_cast<int64_t>(word_bytes.size())}, at::kByte);
  if (!word_bytes.empty()) std::memcpy(wb.data_ptr<uint8_t>(), word_bytes.data(), word_bytes.size());
  return {word_rows, ngram_rows, out_m, wb, at::tensor(offsets, at::kLong), at::tensor(counts, at::kLong),
          at::tensor(std::vector<int64_t>(types.begin(), types.end()), at::kLong), at::tensor(h, at::kLong)};
}

// ---- fasttext_ngram_buckets ----

std::tuple<at::Tensor, at::Tensor> fasttext_ngram_buckets_cpu(const at::Tensor& word_bytes,
                                                              const at::Tensor& word_offsets, int64_t minn,
                                                              int64_t maxn, int64_t buckets) {
  const char* op = "fasttext_ngram_buckets";
  check_word_list(word_bytes, word_offsets, op);
  TORCH_CHECK_VALUE(minn >= 0, op, ": minn must be >= 0, got ", minn);
  TORCH_CHECK_VALUE(maxn >= 0, op, ": maxn must be >= 0, got ", maxn);
  TORCH_CHECK_VALUE(buckets >= 0 && buckets <= std::numeric_limits<int32_t>::max(), op,
                    ": buckets must be from 0 to 2^31-1, got ", buckets);
  const auto wb_c = word_bytes.contiguous();
  const auto off_c = word_offsets.contiguous();
  const char* wb = reinterpret_cast<const char*>(wb_c.data_ptr<uint8_t>());
  const int64_t* off = off_c.data_ptr<int64_t>();
  const int64_t n = off_c.numel() - 1;
  const int64_t nbytes = wb_c.numel();
  TORCH_CHECK_VALUE(off[0] == 0, op, ": word_offsets[0] must be 0, got ", off[0]);
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK_VALUE(off[i + 1] >= off[i] && off[i + 1] <= nbytes, op, ": word_offsets[", i + 1, "] = ",
                      off[i + 1], " must be >= word_offsets[", i, "] = ", off[i], " and <= ", nbytes,
                      " (the length of word_bytes)");
  auto offsets = at::empty({n + 1}, at::kLong);
  int64_t* o = offsets.data_ptr<int64_t>();
  o[0] = 0;
  // pass 1: counts per word (in parallel), pass 2: the buckets into their slots
  parallel_for(0, n, 256, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      o[i + 1] = subwords::count_ngrams(wb + off[i], static_cast<size_t>(off[i + 1] - off[i]), minn, maxn, buckets);
  });
  for (int64_t i = 0; i < n; ++i) o[i + 1] += o[i];
  auto out = at::empty({o[n]}, at::kLong);
  int64_t* ob = out.data_ptr<int64_t>();
  parallel_for(0, n, 256, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int64_t* p = ob + o[i];
      subwords::for_each_ngram_bucket(wb + off[i], static_cast<size_t>(off[i + 1] - off[i]), minn, maxn, buckets,
                                      [&](int64_t bk) { *p++ = bk; });
    }
  });
  return {offsets, out};
}

}  // namespace

// The loader reads a file (no tensor inputs to dispatch on): registered as the catch-all, like load_vectors.
TORCH_LIBRARY_IMPL(embedfast, CompositeExplicitAutograd, m) { m.impl("load_fasttext", &load_fasttext_cpu); }
TORCH_LIBRARY_IMPL(embedfast, CPU, m) { m.impl("fasttext_ngram_buckets", &fasttext_ngram_buckets_cpu); }

}  // namespace embedfast
