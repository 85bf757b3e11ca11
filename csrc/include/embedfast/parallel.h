// Run fn(part) for part = 0..n-1 on exactly n std::threads (part 0 on the calling thread) and rethrow the
// first exception. Used where the number of workers is part of the result (Hogwild parts, RNG streams), so
// at::parallel_for's pool-dependent splitting does not fit.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace embedfast {

template <typename Fn>
void run_parts(int n, Fn&& fn) {
  if (n <= 1) {
    fn(0);
    return;
  }
  std::exception_ptr error;
  std::mutex mu;
  auto guarded = [&](int part) {
    try {
      fn(part);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(n - 1);
  for (int p = 1; p < n; ++p) workers.emplace_back(guarded, p);
  guarded(0);
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
}

// Run fn(i) for i = 0..n-1 on up to `threads` workers that take the next item as they become free (for items
// of uneven cost, e.g. chunks of a file). Stops handing out items after an exception, which is rethrown.
template <typename Fn>
void run_dynamic(int64_t n, int threads, Fn&& fn) {
  const int workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  run_parts(workers, [&](int) {
    try {
      for (int64_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n;) fn(i);
    } catch (...) {
      failed.store(true);
      throw;
    }
  });
}

}  // namespace embedfast
