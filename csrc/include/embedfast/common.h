// Shared helpers for every op family: argument checks that turn bad input into clear Python errors.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace embedfast {

// An allocation sized by an op's arguments is checked against the machine's memory before it is attempted: with
// overcommit a too-large block would be granted and the process killed when its pages are written.
// Physical memory in bytes (read once; +inf when unknown).
double machine_memory_bytes();
// ValueError "<op>: <what> would take <bytes> bytes, more than this machine's memory (<mem> bytes)".
[[noreturn]] void raise_too_large(double bytes, const char* op, const std::string& what);

// "arg `name` must be <dtype>, got <dtype>" as a TypeError-free ValueError-style message.
inline void check_dtype(const at::Tensor& t, at::ScalarType want, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.scalar_type() == want, op, ": argument '", name, "' must have dtype ", want, ", got ",
                    t.scalar_type());
}

inline void check_dim(const at::Tensor& t, int64_t ndim, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == ndim, op, ": argument '", name, "' must be ", ndim, "-D, got shape ", t.sizes());
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op, const char* na,
                              const char* nb) {
  TORCH_CHECK_VALUE(a.device() == b.device(), op, ": arguments '", na, "' (", a.device(), ") and '", nb, "' (",
                    b.device(), ") must be on the same device");
}

inline void check_cpu(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": argument '", name, "' must be a CPU tensor here, got ", t.device());
}

// A CPU tensor argument of the given dtype and number of dimensions.
inline void check_cpu_arg(const at::Tensor& t, at::ScalarType dtype, int64_t ndim, const char* op, const char* name) {
  check_cpu(t, op, name);
  check_dtype(t, dtype, op, name);
  check_dim(t, ndim, op, name);
}

// A word list argument pair: word_bytes (uint8 [nbytes], the words back to back) and word_offsets (int64 [N+1]),
// both 1-D CPU tensors (the offsets' values are the op's to check: its rule on empty words differs).
inline void check_word_list(const at::Tensor& word_bytes, const at::Tensor& word_offsets, const char* op) {
  check_cpu_arg(word_bytes, at::kByte, 1, op, "word_bytes");
  check_cpu_arg(word_offsets, at::kLong, 1, op, "word_offsets");
  TORCH_CHECK_VALUE(word_offsets.numel() >= 1, op, ": argument 'word_offsets' must have at least 1 entry");
}

// Builds the word list an op returns (word_bytes uint8 [nbytes], word_offsets int64 [n + 1]) from runs of words
// given in order; the totals are known up front, so both tensors are allocated once.
class WordListBuilder {
 public:
  WordListBuilder(int64_t n, int64_t nbytes)
      : bytes(at::empty({nbytes}, at::kByte)), offsets(at::empty({n + 1}, at::kLong)),
        b_(bytes.data_ptr<uint8_t>()), o_(offsets.data_ptr<int64_t>()), n_(n), nbytes_(nbytes) {
    o_[0] = 0;
  }
  // `count` words back to back in `p`, of the lengths `lens`.
  void add(const char* p, const int64_t* lens, size_t count) {
    TORCH_INTERNAL_ASSERT(r_ + int64_t(count) <= n_);
    int64_t run = 0;
    for (size_t i = 0; i < count; ++i) o_[++r_] = pos_ + (run += lens[i]);
    TORCH_INTERNAL_ASSERT(pos_ + run <= nbytes_);
    if (run > 0) std::memcpy(b_ + pos_, p, size_t(run));
    pos_ += run;
  }
  void add(const char* p, int64_t len) { add(p, &len, 1); }
  // Every word and byte announced has been added.
  void check_full() const { TORCH_INTERNAL_ASSERT(r_ == n_ && pos_ == nbytes_); }

  at::Tensor bytes, offsets;

 private:
  uint8_t* b_;
  int64_t* o_;
  int64_t n_, nbytes_, r_ = 0, pos_ = 0;
};

// t must be on `want`: the CPU (check_cpu's message) or one CUDA device (the CUDA kernels: every argument on the
// device of the first tensor argument).
inline void check_device(const at::Tensor& t, const at::Device& want, const char* op, const char* name) {
  if (want.is_cpu()) return check_cpu(t, op, name);
  TORCH_CHECK_VALUE(t.device() == want, op, ": argument '", name, "' must be a CUDA tensor on ", want,
                    " here (the device of the other arguments), got ", t.device());
}

// Bytes of user data (a word, a field) for an error message: valid UTF-8 is kept, control bytes and bytes that
// are not UTF-8 are written as \xNN (Python decodes an exception message as UTF-8: a raw byte 0xE9 would turn
// the error into a UnicodeDecodeError), cut after `max` bytes with "...".
inline std::string show_bytes(const char* b, const char* e, size_t max = 40) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  const auto* s = reinterpret_cast<const unsigned char*>(b);
  const size_t n = static_cast<size_t>(e - b);
  size_t i = 0;
  while (i < n && i < max) {
    const unsigned char c = s[i];
    size_t len = 0;
    if (c >= 0x20 && c < 0x7f) {
      len = 1;
    } else if (c >= 0xc2 && c <= 0xf4) {
      len = c < 0xe0 ? 2 : (c < 0xf0 ? 3 : 4);
      if (i + len > n) len = 0;
      for (size_t k = 1; k < len; ++k)
        if ((s[i + k] & 0xc0) != 0x80) len = 0;
      if (len == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0))) len = 0;
      if (len == 4 && ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))) len = 0;
    }
    if (len == 0) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    } else {
      out.append(b + i, len);
      i += len;
    }
  }
  if (i < n) out += "...";
  return out;
}

// Range check of an index tensor against [lo, hi); reports the first offending value and its position.
// Works on any integer dtype by going through int64.
void check_index_range(const at::Tensor& idx, int64_t lo, int64_t hi, const char* op, const char* name);

}  // namespace embedfast
