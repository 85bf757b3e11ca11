// tests/test_vecops.py compiles this against csrc/include/embedfast/vecops.h with several -m flags and runs it:
// the multi-row helpers against their one-row twins (bit for bit, as vecops.h promises; exchange_dot_rows_f32's rows
// and y against exchange_rows_f32's) and against a double precision reference, on random sizes, unaligned rows at
// random places in one buffer, and poisoned margins (nothing outside [0, D) of a row or of y may be written).
// Prints "ok <cases>" or the first failure; exit 1 on any.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "embedfast/vecops.h"

using namespace embedfast;

namespace {
constexpr float kPoison = -7.0e30f;
constexpr int kMargin = 17;

bool close(double got, double want, double scale) { return std::fabs(got - want) <= 1e-5 * scale + 1e-30; }

int fail(const char* what, int D, int n, int k) {
  std::printf("FAIL %s D %d rows %d lane %d\n", what, D, n, k);
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  const unsigned seed = argc > 1 ? unsigned(std::strtoul(argv[1], nullptr, 10)) : 1u;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 3000;
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  long cases = 0;
  for (int it = 0; it < iters; ++it) {
    const int D = 1 + int(g() % 300), n = 1 + int(g() % 40);
    // rows at random, unaligned, non-overlapping places of one buffer, each with poisoned margins
    const int stride = D + 2 * kMargin + int(g() % 5);
    std::vector<float> buf(size_t(stride) * n + 64, kPoison);
    std::vector<float*> rows(n);
    for (int r = 0; r < n; ++r) {
      rows[r] = buf.data() + size_t(r) * stride + kMargin + int(g() % 3);
      for (int k = 0; k < D; ++k) rows[r][k] = u(g);
    }
    std::vector<float> xb(D + 2 * kMargin, kPoison), yb(D + 2 * kMargin, kPoison), coef(n);
    float *x = xb.data() + kMargin, *y = yb.data() + kMargin;
    for (int k = 0; k < D; ++k) x[k] = u(g), y[k] = u(g);
    for (auto& c : coef) c = u(g);
    const bool accumulate = g() & 1;

    // multi_dot_f32: equal to dot_f32 row by row, close to the double sum
    std::vector<float> out(n + 1, kPoison);
    multi_dot_f32(x, rows.data(), n, D, out.data());
    if (out[n] != kPoison) return fail("multi_dot_f32 wrote past out[n)", D, n, n);
    for (int r = 0; r < n; ++r, ++cases) {
      const float d = dot_f32(x, rows[r], D);
      if (std::memcmp(&d, &out[r], sizeof d) != 0) return fail("multi_dot_f32 != dot_f32", D, n, r);
      double want = 0, scale = 0;
      for (int k = 0; k < D; ++k) want += double(x[k]) * rows[r][k], scale += std::fabs(double(x[k]) * rows[r][k]);
      if (!close(out[r], want, scale)) return fail("multi_dot_f32 vs double", D, n, r);
    }

    // exchange_rows_f32: equal to combine_rows_f32 then axpy_f32 per row, close to the double reference
    std::vector<float> buf2 = buf, yb2 = yb;
    std::vector<float*> rows2(n);
    for (int r = 0; r < n; ++r) rows2[r] = buf2.data() + (rows[r] - buf.data());
    float* y2 = yb2.data() + kMargin;
    std::vector<double> ywant(D), rwant(size_t(n) * D);
    for (int k = 0; k < D; ++k) {
      double v = accumulate ? y[k] : 0.0;
      for (int r = 0; r < n; ++r) v += double(coef[r]) * rows[r][k];
      ywant[k] = v;
      for (int r = 0; r < n; ++r) rwant[size_t(r) * D + k] = rows[r][k] + double(coef[r]) * x[k];
    }
    exchange_rows_f32(y, accumulate, coef.data(), x, rows.data(), n, D);
    combine_rows_f32(y2, accumulate, coef.data(), 1, rows2.data(), n, D);
    for (int r = 0; r < n; ++r) axpy_f32(coef[r], x, rows2[r], D);
    ++cases;
    if (std::memcmp(buf.data(), buf2.data(), buf.size() * sizeof(float)) != 0)
      return fail("exchange_rows_f32 rows != axpy_f32 (or a margin written)", D, n, -1);
    if (std::memcmp(yb.data(), yb2.data(), yb.size() * sizeof(float)) != 0)
      return fail("exchange_rows_f32 y != combine_rows_f32", D, n, -1);
    for (int k = 0; k < kMargin; ++k)
      if (yb[k] != kPoison || yb[kMargin + D + k] != kPoison) return fail("exchange_rows_f32 wrote past y", D, n, k);
    for (int k = 0; k < D; ++k) {
      double scale = accumulate ? std::fabs(ywant[k]) + 1 : 1;
      for (int r = 0; r < n; ++r) scale += std::fabs(double(coef[r]) * rwant[size_t(r) * D + k]);
      if (!close(y[k], ywant[k], scale)) return fail("exchange_rows_f32 y vs double", D, n, k);
      for (int r = 0; r < n; ++r)
        if (!close(rows[r][k], rwant[size_t(r) * D + k], 2.0)) return fail("exchange_rows_f32 row vs double", D, n, k);
    }

    // exchange_dot_rows_f32: y and rows equal exchange_rows_f32's (bit for bit), the dots of xn with the updated
    // rows close to the double sum; nothing written past out[n)
    std::vector<float> buf3(buf.size(), kPoison), yb3(yb.size(), kPoison);
    std::vector<float*> rows3(n);
    for (int r = 0; r < n; ++r) rows3[r] = buf3.data() + (rows[r] - buf.data());
    float* y3 = yb3.data() + kMargin;
    for (int k = 0; k < D; ++k) {
      y3[k] = y2[k];
      for (int r = 0; r < n; ++r) rows3[r][k] = rows2[r][k];  // the rows as exchange_rows_f32 left them
    }
    std::vector<float> xnb(D + 2 * kMargin, kPoison), dots(n + 1, kPoison);
    std::vector<float> scratch(size_t(kDotPartialLanes) * n, kPoison);
    float* xn = xnb.data() + kMargin;
    for (int k = 0; k < D; ++k) xn[k] = u(g);
    for (auto& c : coef) c = u(g);
    exchange_dot_rows_f32(y3, accumulate, coef.data(), x, rows3.data(), n, D, xn, dots.data(), scratch.data());
    exchange_rows_f32(y2, accumulate, coef.data(), x, rows2.data(), n, D);
    ++cases;
    if (std::memcmp(buf3.data(), buf2.data(), buf.size() * sizeof(float)) != 0)
      return fail("exchange_dot_rows_f32 rows != exchange_rows_f32 (or a margin written)", D, n, -1);
    if (std::memcmp(yb3.data(), yb2.data(), yb.size() * sizeof(float)) != 0)
      return fail("exchange_dot_rows_f32 y != exchange_rows_f32", D, n, -1);
    if (dots[n] != kPoison) return fail("exchange_dot_rows_f32 wrote past out[n)", D, n, n);
    for (int r = 0; r < n; ++r, ++cases) {
      double want = 0, scale = 0;
      for (int k = 0; k < D; ++k) want += double(xn[k]) * rows2[r][k], scale += std::fabs(double(xn[k]) * rows2[r][k]);
      if (!close(dots[r], want, scale)) return fail("exchange_dot_rows_f32 dot vs double", D, n, r);
    }
  }
  std::printf("ok %ld\n", cases);
  return 0;
}
