// Large op outputs on huge pages.
//
// On the VMs measured (benchmarks/RESULTS.md) the page faults of a freshly allocated large output (4 KiB,
// kernel-zeroed) cost more than computing it. empty_large / zeros_large hand out blocks of at least
// large_alloc_threshold() bytes as 2 MiB-aligned anonymous mmaps advised MADV_HUGEPAGE (transparent huge pages
// in "madvise" mode fault in 2 MiB at a time: 512x fewer faults); smaller blocks come from at::empty / at::zeros.
// The result is an ordinary contiguous CPU tensor: its storage frees the mapping when the last reference goes,
// and it is resizable (a resize beyond the mapping moves the data to a block of torch's CPU allocator).
//
// zeros_large does not write the block: a fresh anonymous mapping reads as zero by the kernel's guarantee, so
// pages the caller never writes are never faulted in by the op (they are when first read or written later).
//
// EMBEDFAST_LARGE_ALLOC_MIN_BYTES (read on every call) overrides the threshold (default 2 MiB, one huge page); 0 sends every
// non-empty block through the mmap path (tests), a negative value switches the mmap path off.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace embedfast {

// The current threshold in bytes (-1: mmap path off).
int64_t large_alloc_threshold();

// Uninitialised contiguous CPU tensor. Honours torch.utils.deterministic.fill_uninitialized_memory (with
// deterministic algorithms on, floating blocks are filled with NaN, integer ones with their max) like at::empty.
at::Tensor empty_large(at::IntArrayRef sizes, at::TensorOptions options);

// Zero-filled contiguous CPU tensor; the mmap path writes nothing (fresh anonymous pages are zero).
at::Tensor zeros_large(at::IntArrayRef sizes, at::TensorOptions options);

}  // namespace embedfast
