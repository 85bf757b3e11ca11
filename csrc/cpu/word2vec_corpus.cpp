// embedfast::corpus_build_vocab / corpus_encode — the corpus pipeline of word2vec training.
//
// Input: whitespace-tokenised text, one sentence per line (a file, read with pread block by block, or a uint8
// buffer). Tokens are separated by ' ', '\t', '\r', '\v', '\f'; '\n' ends a sentence; a UTF-8 byte-order mark
// at byte 0 of the text is not part of the first token. Tokens are byte strings: bytes that are not UTF-8 are
// kept as they are (two tokens that differ in any byte are two words). Nothing is dropped silently: blank
// lines, out-of-vocabulary tokens and split lines are all counted in `stats`.
//
// Files: opened without blocking and refused unless regular (a FIFO, directory or device is an error naming
// it); read with pread into per-thread buffers of 256 KiB cut after a separator (a token never straddles two
// blocks; a line may), so a corpus of any size, even one line of 100 MB, keeps a few MiB resident; a file that
// is truncated or rewritten while it is read gives an error naming it ("changed while it was being read"),
// never SIGBUS (see embedfast/input_file.h).
//
// corpus_build_vocab: the text is cut into one byte range per thread at newline boundaries; each thread counts
// its words in its own open-addressing hash table (keys copied into the table's arena), the tables are
// merged, words below min_count are dropped, the rest sorted by count (descending) then, among equal counts,
// by their first position in the text, the word first seen later coming first (gensim's order, so the ids are
// gensim's; the positions are whole-text token indices, so the ids are the same for every thread count), and
// cut to max_vocab.
// corpus_encode: the same ranges, each thread maps its tokens to int32 ids through a read-only table of the
// vocabulary, drops OOV tokens, and cuts lines with more than max_sentence_length kept tokens into pieces;
// the per-thread results are concatenated in text order. With `start` / `max_bytes` it encodes one block of
// whole lines: from byte `start` (0 or just after a '\n') through the first '\n' at or after byte
// start + max_bytes - 1 (or the end of the text); stats[bytes] is the block's length, so the next block starts
// at start + stats[bytes]. The trainer streams a corpus of any size this way, one block at a time.
//
// Arguments are checked before anything is read (a crafted checkpoint reaches corpus_encode): word_offsets
// must be 1-D int64, start at 0, be strictly increasing (no empty word), end at len(word_bytes); the words must
// be distinct and hold no separator byte (they could never match a token); num_threads >= 0 (0: torch's
// thread count; more than 256 is capped at 256).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "embedfast/common.h"
#include "embedfast/input_file.h"
#include "embedfast/parallel.h"
#include "embedfast/rng.h"

namespace embedfast {
namespace {

// Order must match VOCAB_STATS in embedfast/ops.py.
enum VocabStat {
  kVBytes, kVLines, kVBlankLines, kVTokens, kVUniqueWords, kVVocabWords, kVVocabTokens, kVMinCountWords,
  kVMinCountTokens, kVMaxVocabWords, kVMaxVocabTokens, kVNumStats
};
// Order must match ENCODE_STATS in embedfast/ops.py.
enum EncodeStat {
  kEBytes, kELines, kEBlankLines, kETokens, kEEncodedTokens, kEOovTokens, kESentences, kESplitLines, kEExtraPieces,
  kEEmptyLines, kENumStats
};

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

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

// Open-addressing (linear probing) table from byte strings to values (value-initialised on insertion). Keys
// are not copied (they must outlive the table) unless `copy_keys`: then each new key is copied into the
// table's own arena, so the table does not keep the pages of a mapped text in use (the counting pass drops
// them block by block; keys pointing into them would fault most of the file back in).
template <typename Value>
class WordTable {
 public:
  struct Slot {
    const char* ptr = nullptr;
    uint32_t len = 0;
    uint64_t hash = 0;
    Value value{};
  };
  explicit WordTable(size_t capacity_hint = 1024, bool copy_keys = false) : copy_keys_(copy_keys) {
    rehash(std::max<size_t>(16, next_pow2(capacity_hint * 2)));
  }

  // Returns the slot of the key, inserting it with a value-initialised value when absent.
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

// A word's count and its first position (token index) in the text, for corpus_build_vocab.
struct WordCount {
  int64_t count = 0;
  int64_t first = 0;
};
using CountTable = WordTable<WordCount>;
using IdTable = WordTable<int64_t>;  // word -> id + 1 (0: a fresh slot)

// The text to read: a file (read with pread) or a caller's buffer.
struct Source {
  std::unique_ptr<InputFile> file;
  std::unique_ptr<TextInput> in;
  size_t size = 0;
  size_t bom = 0;  // 3 when the text starts with a UTF-8 byte-order mark
};

Source open_source(const std::string& path, const at::Tensor& data, const char* op) {
  Source src;
  if (!path.empty()) {
    src.file = std::make_unique<InputFile>(path, op);
    src.in = std::make_unique<TextInput>(src.file.get());
  } else {
    check_cpu_arg(data, at::kByte, 1, op, "data");
    TORCH_CHECK_VALUE(data.is_contiguous(), op, ": argument 'data' must be contiguous");
    src.in = std::make_unique<TextInput>(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()),
                                         size_t(data.numel()));
  }
  src.size = src.in->size();
  if (src.size >= 3 && src.in->byte_at(0) == '\xEF' && src.in->byte_at(1) == '\xBB' && src.in->byte_at(2) == '\xBF')
    src.bom = 3;
  return src;
}

// Cut [begin, begin + size) into `parts` byte ranges that start right after a '\n' (or at begin); offsets
// relative to begin.
std::vector<size_t> split_at_newlines(const TextInput& in, size_t begin, size_t size, int parts) {
  std::vector<size_t> cuts{0};
  for (int p = 1; p < parts; ++p) {
    const size_t pos = size * size_t(p) / size_t(parts);
    if (pos <= cuts.back()) continue;
    const size_t nl = in.find('\n', begin + pos, begin + size);
    if (nl == begin + size) break;
    const size_t next = nl - begin + 1;
    if (next > cuts.back() && next < size) cuts.push_back(next);
  }
  cuts.push_back(size);
  return cuts;
}

// Calls on_token(ptr, len) for every token of [p, end) and on_line_end(had_tokens) at every '\n'.
// `line_has_content` carries the state of the current line from one piece of a range to the next; the caller
// ends an unterminated last line that has content.
template <typename OnToken, typename OnLineEnd>
void scan(const char* p, const char* end, bool& line_state, OnToken&& on_token, OnLineEnd&& on_line_end) {
  bool line_has_content = line_state;  // a local: the callbacks' stores cannot alias it
  while (p < end) {
    const char c = *p;
    if (c == '\n') {
      on_line_end(line_has_content);
      line_has_content = false;
      ++p;
      continue;
    }
    if (is_space(c)) {
      ++p;
      continue;
    }
    const char* start = p;
    while (p < end && *p != '\n' && !is_space(*p)) ++p;
    on_token(start, size_t(p - start));
    line_has_content = true;
  }
  line_state = line_has_content;
}

inline bool is_separator(char c) { return c == '\n' || is_space(c); }

// last_cut of the read blocks: after the last separator, so that no token straddles two blocks.
inline const char* after_last_separator(const char* b, const char* e) {
  for (const char* q = e; q > b; --q)
    if (is_separator(q[-1])) return q;
  return nullptr;
}

// scan() over the text's byte range [begin, end) (offsets), a file read in blocks of 256 KiB into a buffer kept
// for the next call (see PooledBuffer), a memory text in place. A byte-order mark at byte 0 is skipped.
template <typename OnToken, typename OnLineEnd>
void scan_range(const Source& src, size_t begin, size_t end, OnToken&& on_token, OnLineEnd&& on_line_end) {
  constexpr size_t kBlock = size_t(256) << 10;  // stays in L2 while it is scanned
  if (begin == 0) begin = std::min(src.bom, end);
  PooledBuffer buf;
  TextInput::Blocks blocks(*src.in, begin, end, kBlock, buf.get());
  bool line_has_content = false;
  const char *b, *e;
  size_t off;
  while (blocks.next(b, e, off, after_last_separator)) scan(b, e, line_has_content, on_token, on_line_end);
  if (line_has_content) on_line_end(true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> corpus_build_vocab(
    const std::string& path, const at::Tensor& data, int64_t min_count, int64_t max_vocab, int64_t num_threads) {
  const char* op = "corpus_build_vocab";
  TORCH_CHECK_VALUE(min_count >= 1, op, ": min_count must be >= 1, got ", min_count);
  TORCH_CHECK_VALUE(max_vocab >= -1 && max_vocab != 0, op, ": max_vocab must be -1 (no limit) or >= 1, got ",
                    max_vocab);
  const int threads = resolve_threads(num_threads, op);
  Source src = open_source(path, data, op);
  // small inputs are not worth a thread each
  const int parts = int(std::max<size_t>(1, std::min<size_t>(threads, src.size / (size_t(1) << 16) + 1)));
  const auto cuts = split_at_newlines(*src.in, 0, src.size, parts);
  const int nranges = int(cuts.size()) - 1;

  std::vector<std::unique_ptr<CountTable>> tables(nranges);
  std::vector<std::array<int64_t, 3>> line_stats(nranges);  // lines, blank lines, tokens
  run_parts(nranges, [&](int r) {
    auto table = std::make_unique<CountTable>(1 << 14, /*copy_keys=*/true);
    int64_t lines = 0, blank = 0, tokens = 0;
    scan_range(
        src, cuts[r], cuts[r + 1],
        [&](const char* p, size_t n) {
          TORCH_CHECK_VALUE(n < (size_t(1) << 31), op, ": a token is longer than 2 GiB");
          WordCount& c = table->upsert(p, uint32_t(n), hash_bytes(p, n)).value;
          if (c.count++ == 0) c.first = tokens;  // the range's own token index until the merge
          ++tokens;
        },
        [&](bool had) {
          ++lines;
          if (!had) ++blank;
        });
    tables[r] = std::move(table);
    line_stats[r] = {lines, blank, tokens};
  });
  src.in->check_unchanged();

  // merge into the first table, in text order: a word already there was seen in an earlier range, so its
  // first position stands; a new one's is its range's offset (the tokens of the ranges before) plus its own
  CountTable& all = *tables[0];
  int64_t range_start = 0;
  for (int r = 1; r < nranges; ++r) {
    range_start += line_stats[r - 1][2];
    for (const auto& s : tables[r]->slots()) {
      if (!s.ptr) continue;
      WordCount& c = all.upsert(s.ptr, s.len, s.hash).value;
      if (c.count == 0) c.first = range_start + s.value.first;
      c.count += s.value.count;
    }
  }

  std::vector<const CountTable::Slot*> kept;
  int64_t tokens = 0, min_words = 0, min_tokens = 0;
  for (const auto& s : all.slots()) {
    if (!s.ptr) continue;
    tokens += s.value.count;
    if (s.value.count < min_count) {
      ++min_words;
      min_tokens += s.value.count;
    } else {
      kept.push_back(&s);
    }
  }
  // first positions are distinct, so this order is total
  std::sort(kept.begin(), kept.end(), [](const CountTable::Slot* a, const CountTable::Slot* b) {
    if (a->value.count != b->value.count) return a->value.count > b->value.count;
    return a->value.first > b->value.first;
  });
  int64_t cut_words = 0, cut_tokens = 0;
  if (max_vocab > 0 && int64_t(kept.size()) > max_vocab) {
    for (size_t i = size_t(max_vocab); i < kept.size(); ++i) {
      ++cut_words;
      cut_tokens += kept[i]->value.count;
    }
    kept.resize(size_t(max_vocab));
  }
  const int64_t n = int64_t(kept.size());
  int64_t nbytes = 0;
  for (auto* s : kept) nbytes += s->len;
  WordListBuilder words(n, nbytes);
  auto counts = at::empty({n}, at::kLong);
  auto* wc = counts.data_ptr<int64_t>();
  int64_t vocab_tokens = 0;
  for (int64_t i = 0; i < n; ++i) {
    words.add(kept[i]->ptr, kept[i]->len);
    wc[i] = kept[i]->value.count;
    vocab_tokens += kept[i]->value.count;
  }
  words.check_full();

  auto stats = at::zeros({kVNumStats}, at::kLong);
  auto* st = stats.data_ptr<int64_t>();
  st[kVBytes] = int64_t(src.size);
  for (const auto& ls : line_stats) {
    st[kVLines] += ls[0];
    st[kVBlankLines] += ls[1];
  }
  st[kVTokens] = tokens;
  st[kVUniqueWords] = int64_t(all.size());
  st[kVVocabWords] = n;
  st[kVVocabTokens] = vocab_tokens;
  st[kVMinCountWords] = min_words;
  st[kVMinCountTokens] = min_tokens;
  st[kVMaxVocabWords] = cut_words;
  st[kVMaxVocabTokens] = cut_tokens;
  return {words.bytes, words.offsets, counts, stats};
}

// The lookup table of a vocabulary (word -> id + 1), with its own copy of the words. The last one built is
// kept: a streamed corpus calls corpus_encode once per block with the same vocabulary, and rebuilding the
// table each time would cost more than encoding a small block. A hit needs the same
// bytes and offsets (compared in full, not by a hash), so a vocabulary changed in place is never mistaken.
struct VocabIndex {
  std::vector<char> bytes;
  std::vector<int64_t> offsets;
  IdTable table;
};

// Checks a vocabulary (word_bytes [nbytes], word_offsets [nwords + 1]) completely before any word is read:
// offsets start at 0, strictly increase (no empty word), end at nbytes; no word holds a separator byte.
void check_vocabulary(const char* wb, const int64_t* wo, int64_t nwords, int64_t nbytes, const char* op) {
  TORCH_CHECK_VALUE(wo[0] == 0, op, ": argument 'word_offsets' must start at 0, got word_offsets[0] = ", wo[0]);
  for (int64_t i = 0; i < nwords; ++i) {
    if (wo[i + 1] > wo[i] && wo[i + 1] <= nbytes && wo[i + 1] - wo[i] < (int64_t(1) << 31)) continue;
    TORCH_CHECK_VALUE(wo[i + 1] > wo[i], op, ": argument 'word_offsets' must be strictly increasing (word ", i,
                      " is empty or offsets go back: word_offsets[", i, "] = ", wo[i], ", word_offsets[", i + 1,
                      "] = ", wo[i + 1], ")");
    TORCH_CHECK_VALUE(wo[i + 1] <= nbytes, op, ": argument 'word_offsets' has word_offsets[", i + 1, "] = ",
                      wo[i + 1], " beyond len(word_bytes) = ", nbytes);
    TORCH_CHECK_VALUE(false, op, ": argument 'word_offsets': word ", i, " is 2 GiB or longer");
  }
  TORCH_CHECK_VALUE(wo[nwords] == nbytes, op, ": argument 'word_offsets' must end at len(word_bytes) = ", nbytes,
                    ", got word_offsets[", nwords, "] = ", wo[nwords]);
  for (int64_t k = 0; k < nbytes; ++k) {
    if (!is_separator(wb[k])) continue;
    const int64_t i = std::upper_bound(wo, wo + nwords + 1, k) - wo - 1;
    TORCH_CHECK_VALUE(false, op, ": word ", i, " of the vocabulary ('", show_bytes(wb + wo[i], wb + wo[i + 1]),
                      "') contains a whitespace byte (", int(static_cast<unsigned char>(wb[k])),
                      "): it could never match a token");
  }
}

std::shared_ptr<const VocabIndex> vocab_index(const char* wb, const int64_t* wo, int64_t nwords, int64_t nbytes_in,
                                              const char* op) {
  static std::mutex mu;
  static std::shared_ptr<const VocabIndex> last;
  const size_t nbytes = size_t(nbytes_in);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (last && last->offsets.size() == size_t(nwords + 1) && last->bytes.size() == nbytes &&
        std::memcmp(last->offsets.data(), wo, sizeof(int64_t) * size_t(nwords + 1)) == 0 &&
        (nbytes == 0 || std::memcmp(last->bytes.data(), wb, nbytes) == 0))
      return last;  // the same offsets and bytes as a vocabulary checked before
  }
  check_vocabulary(wb, wo, nwords, nbytes_in, op);
  auto idx = std::make_shared<VocabIndex>();
  idx->bytes.assign(wb, wb + nbytes);
  idx->offsets.assign(wo, wo + nwords + 1);
  idx->table = IdTable(size_t(nwords) + 16);
  const char* base = idx->bytes.data();
  for (int64_t i = 0; i < nwords; ++i) {
    const char* p = base + wo[i];
    const uint32_t n = uint32_t(wo[i + 1] - wo[i]);
    auto& slot = idx->table.upsert(p, n, hash_bytes(p, n));
    TORCH_CHECK_VALUE(slot.value == 0, op, ": word ", i, " ('", show_bytes(p, p + n), "') appears twice in the vocabulary");
    slot.value = i + 1;  // 0 marks a fresh slot
  }
  std::lock_guard<std::mutex> lock(mu);
  last = idx;
  return idx;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> corpus_encode(const std::string& path, const at::Tensor& data,
                                                             const at::Tensor& word_bytes,
                                                             const at::Tensor& word_offsets,
                                                             int64_t max_sentence_length, int64_t num_threads,
                                                             int64_t start, int64_t max_bytes) {
  const char* op = "corpus_encode";
  TORCH_CHECK_VALUE(max_sentence_length >= 1, op, ": max_sentence_length must be >= 1, got ", max_sentence_length);
  TORCH_CHECK_VALUE(max_bytes == -1 || max_bytes >= 1, op, ": max_bytes must be -1 (to the end) or >= 1, got ",
                    max_bytes);
  check_word_list(word_bytes, word_offsets, op);
  const auto wb_c = word_bytes.contiguous();
  const auto wo_c = word_offsets.contiguous();
  const int64_t nwords = wo_c.numel() - 1;
  TORCH_CHECK_VALUE(nwords < (int64_t(1) << 31), op, ": vocabulary too large for int32 ids (", nwords, ")");
  const auto* wb = reinterpret_cast<const char*>(wb_c.data_ptr<uint8_t>());
  const auto* wo = wo_c.data_ptr<int64_t>();
  const auto index = vocab_index(wb, wo, nwords, wb_c.numel(), op);
  const IdTable& vocab = index->table;
  const int threads = resolve_threads(num_threads, op);

  Source src = open_source(path, data, op);
  TORCH_CHECK_INDEX(start >= 0 && size_t(start) <= src.size, op, ": start = ", start, " is outside [0, ", src.size,
                    "] (the text's length", src.file ? "; did the file change?" : "", ")");
  TORCH_CHECK_VALUE(start == 0 || src.in->byte_at(size_t(start) - 1) == '\n', op, ": start = ", start,
                    " is not the beginning of a line (byte ", start - 1, " is not '\\n')");
  // the block: whole lines from `start`
  size_t block_end = src.size;
  if (max_bytes > 0 && size_t(max_bytes) < src.size - size_t(start)) {
    const size_t from = size_t(start) + size_t(max_bytes) - 1;
    const size_t nl = src.in->find('\n', from, src.size);
    if (nl < src.size) block_end = nl + 1;
  }
  const size_t base = size_t(start);
  const size_t block_size = block_end - size_t(start);
  const int parts = int(std::max<size_t>(1, std::min<size_t>(threads, block_size / (size_t(1) << 16) + 1)));
  const auto cuts = split_at_newlines(*src.in, base, block_size, parts);
  const int nranges = int(cuts.size()) - 1;

  struct Part {
    std::vector<int32_t> ids;
    std::vector<int64_t> lengths;  // kept tokens of each output sentence (piece)
    int64_t count[kENumStats] = {};  // the part's lines, blank / empty / split lines, tokens, OOV tokens, pieces
  };
  std::vector<Part> out(nranges);
  run_parts(nranges, [&](int r) {
    Part& part = out[r];
    part.ids.reserve((cuts[r + 1] - cuts[r]) / 5 + 16);
    int64_t in_line = 0;  // kept tokens in the current piece
    int64_t pieces_in_line = 0;
    scan_range(
        src, base + cuts[r], base + cuts[r + 1],
        [&](const char* p, size_t n) {
          ++part.count[kETokens];
          // (a token of 2 GiB or more is longer than any word: out of the vocabulary)
          const auto* s = n < (size_t(1) << 31) ? vocab.find(p, uint32_t(n), hash_bytes(p, n)) : nullptr;
          if (s == nullptr) {
            ++part.count[kEOovTokens];
            return;
          }
          if (in_line == max_sentence_length) {  // close the full piece, start the next one
            part.lengths.push_back(in_line);
            in_line = 0;
            ++pieces_in_line;
          }
          part.ids.push_back(int32_t(s->value - 1));
          ++in_line;
        },
        [&](bool had) {
          ++part.count[kELines];
          if (!had) {
            ++part.count[kEBlankLines];
          } else if (in_line == 0 && pieces_in_line == 0) {
            ++part.count[kEEmptyLines];
          }
          if (in_line > 0) {
            part.lengths.push_back(in_line);
            ++pieces_in_line;
          }
          if (pieces_in_line > 1) {
            ++part.count[kESplitLines];
            part.count[kEExtraPieces] += pieces_in_line - 1;
          }
          in_line = 0;
          pieces_in_line = 0;
        });
  });
  src.in->check_unchanged();

  int64_t total_ids = 0, total_sent = 0;
  for (const auto& p : out) {
    total_ids += int64_t(p.ids.size());
    total_sent += int64_t(p.lengths.size());
  }
  auto ids = at::empty({total_ids}, at::kInt);
  auto offsets = at::empty({total_sent + 1}, at::kLong);
  auto stats = at::zeros({kENumStats}, at::kLong);
  auto* ip = ids.data_ptr<int32_t>();
  auto* op_ = offsets.data_ptr<int64_t>();
  auto* st = stats.data_ptr<int64_t>();
  int64_t pos = 0, si = 0;
  op_[0] = 0;
  for (auto& p : out) {
    if (!p.ids.empty())  // an empty part (and an empty output) has no pointer to copy from or to
      std::memcpy(ip + pos, p.ids.data(), p.ids.size() * sizeof(int32_t));
    std::vector<int32_t>().swap(p.ids);  // free each part once copied: never two full copies of the ids
    for (int64_t len : p.lengths) {
      pos += len;
      op_[++si] = pos;
    }
    for (int k = 0; k < kENumStats; ++k) st[k] += p.count[k];
  }
  st[kEBytes] = int64_t(block_size);
  st[kEEncodedTokens] = total_ids;
  st[kESentences] = total_sent;
  return {ids, offsets, stats};
}

}  // namespace

// Both ops take the `data` tensor (empty when reading a file), which is on the CPU.
TORCH_LIBRARY_IMPL(embedfast, CPU, m) {
  m.impl("corpus_build_vocab", &corpus_build_vocab);
  m.impl("corpus_encode", &corpus_encode);
}

}  // namespace embedfast
