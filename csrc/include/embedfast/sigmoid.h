// Logistic sigmoid and log-sigmoid for the SGNS kernels of every backend.
//
// Two modes, chosen at run time:
//  - exact: 1 / (1 + exp(-x)) and -log1p(exp(-|x|)) - max(-x, 0), in float.
//  - table: word2vec's idea, a table of kSigmoidTableSize values over [-kSigmoidMax, kSigmoidMax], read with
//    linear interpolation between neighbouring entries (error <= h^2/8 max|s''| ~ 7e-7 for the step
//    h = 16/2048, plus float rounding; tests/test_sgns.py checks that table and exact training agree);
//    outside the range the sigmoid saturates to 0 or 1 (the gradient (label - sigmoid) is then off by at most sigmoid(-8) = 3.4e-4,
//    the same clipping as word2vec and gensim).
//
// Non-finite scores (a diverging run, or non-finite weights) never index the table: every range test is written
// so that NaN fails it (`!(x > -kSigmoidMax)`) and takes the lower saturation branch. There the sigmoid is 0 and
// the log-sigmoid is x itself (NaN, or -inf); in the upper branch the log-sigmoid is x - x (0 for a finite x, NaN
// for +inf). So the table's log-sigmoid of every non-finite score is non-finite, and a loss summed from it turns
// non-finite: the SGNS kernels detect divergence from their loss at no cost in the hot loop.
// log_sigmoid_exact keeps the mathematical value (0 at +inf, like torch); log_sigmoid_exact_flagged is the
// exact counterpart of the table's rule for training losses.
// The lookups and the exact functions are EMBEDFAST_HD: the CUDA kernels (csrc/cuda/word2vec_sgns.cu) call the
// same code on a copy of the table in constant memory.
#pragma once

#include <cmath>
#include <cstdint>

#include "embedfast/hostdevice.h"

namespace embedfast {

constexpr int kSigmoidTableSize = 2048;
constexpr float kSigmoidMax = 8.0f;

struct SigmoidTable {
  // sig[i] = sigmoid(x_i), logsig[i] = log(sigmoid(x_i)), x_i = -kSigmoidMax + i * step, i = 0..kSigmoidTableSize
  float sig[kSigmoidTableSize + 2];
  float logsig[kSigmoidTableSize + 2];
  static constexpr float kScale = kSigmoidTableSize / (2.0f * kSigmoidMax);

  SigmoidTable() {
    for (int i = 0; i <= kSigmoidTableSize + 1; ++i) {
      const double x = -double(kSigmoidMax) + double(i) / kScale;
      sig[i] = float(1.0 / (1.0 + std::exp(-x)));
      logsig[i] = float(-std::log1p(std::exp(-x)));
    }
  }
  EMBEDFAST_HD float sigmoid(float x) const {
    if (!(x > -kSigmoidMax)) return 0.0f;  // also NaN
    if (x >= kSigmoidMax) return 1.0f;
    const float p = (x + kSigmoidMax) * kScale;
    const int i = int(p);
    const float t = p - float(i);
    return sig[i] + t * (sig[i + 1] - sig[i]);
  }
  // sigmoid(x) and log(sigmoid(x)) from one index computation.
  EMBEDFAST_HD void both(float x, float& s, float& ls) const {
    if (!(x > -kSigmoidMax)) {  // also NaN: ls = NaN
      s = 0.0f;
      ls = x;
      return;
    }
    if (x >= kSigmoidMax) {
      s = 1.0f;
      ls = x - x;  // 0, NaN for +inf
      return;
    }
    const float p = (x + kSigmoidMax) * kScale;
    const int i = int(p);
    const float t = p - float(i);
    s = sig[i] + t * (sig[i + 1] - sig[i]);
    ls = logsig[i] + t * (logsig[i + 1] - logsig[i]);
  }
  // log(sigmoid(x)); outside the table it is x (x < -max) or 0 (x > max) up to < 3.4e-4; NaN for x = NaN or +inf.
  EMBEDFAST_HD float log_sigmoid(float x) const {
    if (!(x > -kSigmoidMax)) return x;  // also NaN
    if (x >= kSigmoidMax) return x - x;  // 0, NaN for +inf
    const float p = (x + kSigmoidMax) * kScale;
    const int i = int(p);
    const float t = p - float(i);
    return logsig[i] + t * (logsig[i + 1] - logsig[i]);
  }
};

inline const SigmoidTable& sigmoid_table() {
  static const SigmoidTable table;
  return table;
}

EMBEDFAST_HD float sigmoid_exact(float x) { return 1.0f / (1.0f + std::exp(-x)); }
EMBEDFAST_HD double sigmoid_exact(double x) { return 1.0 / (1.0 + std::exp(-x)); }
template <typename T>
EMBEDFAST_HD T log_sigmoid_exact(T x) {
  // log(sigmoid(x)) = -log1p(exp(-x)), computed without overflow for large |x|
  return x >= T(0) ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}
// log_sigmoid_exact(x), but NaN for x = +inf too (x - x is 0 for every finite x): non-finite for every
// non-finite x, so a training loss summed from it shows divergence.
template <typename T>
EMBEDFAST_HD T log_sigmoid_exact_flagged(T x) {
  return log_sigmoid_exact(x) + (x - x);
}

}  // namespace embedfast
