// Run fn(part) for part = 0..n-1 on exactly n std::threads (part 0 on the calling thread) and rethrow the
// first exception. Used where the number of workers is part of the result (Hogwild parts, RNG streams), so
// at::parallel_for's pool-dependent splitting does not fit.
#pragma once

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace embedfast {

// Threads for parallel work: torch.get_num_threads() (set by torch.set_num_threads / OMP_NUM_THREADS).
inline int num_threads() { return std::max(1, at::get_num_threads()); }

// An op's num_threads argument: 0 is torch.get_num_threads(); at most 256; a negative value is an error naming op.
inline int resolve_threads(int64_t requested, const char* op) {
  TORCH_CHECK_VALUE(requested >= 0, op, ": num_threads must be >= 0 (0: torch.get_num_threads()), got ", requested);
  if (requested == 0) return std::max(1, std::min(at::get_num_threads(), 256));
  return static_cast<int>(std::min<int64_t>(requested, 256));
}

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
    } catch (const std::bad_alloc&) {  // a MemoryError that says what ran out, not "std::bad_alloc"
      std::lock_guard<std::mutex> lock(mu);
      if (!error) {
        try {
          TORCH_CHECK_WITH(OutOfMemoryError, false, "out of memory in the work of thread ", part + 1, " of ", n,
                           ": fewer threads (num_threads=) or less data per call need less memory");
        } catch (...) {
          error = std::current_exception();
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(n - 1);
  int started = 1;
  try {
    for (; started < n; ++started) workers.emplace_back(guarded, started);
  } catch (const std::system_error&) {
    // no more threads (ulimit -u, a small container): the parts without one run on this thread below; the
    // work and its result are the same, only slower (never std::terminate on joinable threads)
  }
  guarded(0);
  for (int p = started; p < n; ++p) guarded(p);
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
}

// Workers run_dynamic uses for n items on `threads` threads.
inline int dynamic_workers(int64_t n, int threads) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
}

// Run fn(worker, i) for i = 0..n-1 on dynamic_workers(n, threads) workers (worker = 0..workers-1, e.g. to pick
// a per-worker buffer) that take the next item as they become free (for items of uneven cost, e.g. chunks of
// a file). Stops handing out items after an exception, which is rethrown.
template <typename Fn>
void run_dynamic_workers(int64_t n, int threads, Fn&& fn) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  run_parts(dynamic_workers(n, threads), [&](int w) {
    try {
      for (int64_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n;) fn(w, i);
    } catch (...) {
      failed.store(true);
      throw;
    }
  });
}

// run_dynamic_workers without the worker index: fn(i).
template <typename Fn>
void run_dynamic(int64_t n, int threads, Fn&& fn) {
  run_dynamic_workers(n, threads, [&](int, int64_t i) { fn(i); });
}

// Same contract as at::parallel_for (fn(b, e) over contiguous sub-ranges of [begin, end), at most
// at::get_num_threads() of them, none shorter than `grain` unless the range is), run on std::threads.
// at::parallel_for itself cannot be used here: with torch's OpenMP build it is an inline `#pragma omp parallel`,
// which an extension compiled without -fopenmp silently runs on one thread.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, Fn&& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int64_t max_parts = (n + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1);
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), max_parts)));
  if (parts == 1) {
    fn(begin, end);
    return;
  }
  const int64_t step = (n + parts - 1) / parts;
  run_parts(parts, [&](int p) {
    const int64_t b = begin + p * step, e = std::min(end, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace embedfast
