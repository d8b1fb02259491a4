// Lane blocks and cache lines: loads that never straddle two lines, and scratch memory on the 64-byte grid.
//
// The kernels read (batch, time, channel) rows one block of 64 bytes (16 float32 or 8 float64 channels) at a
// time. When the channel count is not a multiple of a block, a block's row starts off the 64-byte grid on most
// frames, and one 512-bit load across two cache lines cost the scan's register loop 3-4x its time on the
// project's AMD EPYC (bench/bench_scan.py compares d_inner 520 with 512), while four 128-bit loads of the same
// bytes cost nothing measurable either way. Stores across lines showed no such cost. The kernels' own scratch
// (lane arrays, per-item buffers) is placed on the grid instead: alignas(kCacheLine) and CacheLineVector.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace samba {

constexpr std::size_t kCacheLine = 64;

#if defined(__AVX512F__)
// The 64 bytes at `source` (any address) as one vector, read as four 16-byte loads. Where the address is a
// multiple of 16 bytes none of them straddles a line; where it is not, the one that does cost no more in the
// measurements than an aligned load (unlike 512-bit and, at 16-byte offsets, 256-bit loads). On the grid one
// 512-bit load is the faster: the scan as the mixer calls it took about 4 % longer with the four (a branch on
// the address, per load, lost more off the grid than it saved on it), so callers that know every row they read
// is on the grid use that (selective_scan.cpp: OnGrid).
__attribute__((always_inline)) inline __m512 load_cache_line_unsplit(const void* source) {
  const float* part = static_cast<const float*>(source);
  __m512 bytes = _mm512_castps128_ps512(_mm_loadu_ps(part));
  bytes = _mm512_insertf32x4(bytes, _mm_loadu_ps(part + 4), 1);
  bytes = _mm512_insertf32x4(bytes, _mm_loadu_ps(part + 8), 2);
  return _mm512_insertf32x4(bytes, _mm_loadu_ps(part + 12), 3);
}
#endif

// std::allocator with every allocation starting on a cache line (C++17 aligned new).
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* pointer, std::size_t) { ::operator delete(pointer, std::align_val_t{kCacheLine}); }
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator&) { return true; }
  friend bool operator!=(const CacheLineAllocator&, const CacheLineAllocator&) { return false; }
};

template <typename T>
using CacheLineVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace samba
