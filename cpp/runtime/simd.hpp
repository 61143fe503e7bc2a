// Portable SIMD vectors for kernels compiled once per ISA: GCC/Clang vector
// extensions sized to the widest registers of the target the file is compiled
// for (16 bytes baseline, 32 with AVX2, 64 with AVX-512). The same source thus
// becomes SSE2, AVX2+FMA or AVX-512 code; horizontal sums run in a fixed lane
// order, so results do not depend on anything but the ISA. A scalar times a
// vector broadcasts the scalar (with AVX-512, as an embedded {1toN} operand).
#pragma once

#include <cstddef>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace fastopt::simd {

#if defined(__AVX512F__)
constexpr std::size_t kVectorBytes = 64;
#elif defined(__AVX2__)
constexpr std::size_t kVectorBytes = 32;
#else
constexpr std::size_t kVectorBytes = 16;
#endif

template <class T>
struct Vec {
  typedef T type __attribute__((vector_size(kVectorBytes)));
  static constexpr std::size_t lanes = kVectorBytes / sizeof(T);
};

template <class T>
using vec_t = typename Vec<T>::type;

template <class T>
__attribute__((always_inline)) inline vec_t<T> load(const T* p) {
  vec_t<T> v;
  std::memcpy(&v, p, sizeof v);  // an unaligned vector load
  return v;
}

template <class T>
__attribute__((always_inline)) inline void store(T* p, vec_t<T> v) {
  std::memcpy(p, &v, sizeof v);
}

// p[0 .. lanes/2) in both halves of a vector. With AVX2 and AVX-512 one load
// (vbroadcastf128 / vbroadcastf32x8 / vbroadcastf64x4): GCC's own lowering of the
// shuffle below loads half a vector and shuffles it on port 5, which the
// multiply-adds need.
template <class T>
__attribute__((always_inline)) inline vec_t<T> broadcast_half(const T* p) {
  vec_t<T> v;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  if constexpr (sizeof(T) == 4) {
    // The mask forms: GCC 12's plain ones start from an "undefined" vector that
    // -Wmaybe-uninitialized reports; an all-ones mask compiles to the same load.
    const __m512 b = _mm512_maskz_broadcast_f32x8(0xFFFF, _mm256_loadu_ps(reinterpret_cast<const float*>(p)));
    std::memcpy(&v, &b, sizeof v);
  } else {
    const __m512d b = _mm512_maskz_broadcast_f64x4(0xFF, _mm256_loadu_pd(reinterpret_cast<const double*>(p)));
    std::memcpy(&v, &b, sizeof v);
  }
#elif defined(__AVX2__)
  if constexpr (sizeof(T) == 4) {
    const __m256 b = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(p));
    std::memcpy(&v, &b, sizeof v);
  } else {
    const __m256d b = _mm256_broadcast_pd(reinterpret_cast<const __m128d*>(p));
    std::memcpy(&v, &b, sizeof v);
  }
#else
  constexpr std::size_t half = Vec<T>::lanes / 2;
  for (std::size_t i = 0; i < half; ++i) v[i] = v[i + half] = p[i];
#endif
  return v;
}

template <class T>
__attribute__((always_inline)) inline T reduce_add(vec_t<T> v) {
  T s = v[0];
  for (std::size_t i = 1; i < Vec<T>::lanes; ++i) s += v[i];
  return s;
}

// Horizontal max and sum by halving: log2(lanes) steps instead of a chain of
// lanes − 1 dependent ones (also a fixed order per ISA). The max of lanes
// holding NaN is unspecified (NaN or another lane).
template <class T, std::size_t Bytes>
struct Halving {
  typedef T full __attribute__((vector_size(Bytes)));
  typedef T half __attribute__((vector_size(Bytes / 2)));
  static void split(full v, half& lo, half& hi) {
    std::memcpy(&lo, &v, Bytes / 2);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + Bytes / 2, Bytes / 2);
  }
  __attribute__((always_inline)) static T max(full v) {
    if constexpr (Bytes == 2 * sizeof(T)) {
      return v[0] > v[1] ? v[0] : v[1];
    } else {
      half lo, hi;
      split(v, lo, hi);
      return Halving<T, Bytes / 2>::max(lo > hi ? lo : hi);
    }
  }
  __attribute__((always_inline)) static T sum(full v) {
    if constexpr (Bytes == 2 * sizeof(T)) {
      return v[0] + v[1];
    } else {
      half lo, hi;
      split(v, lo, hi);
      return Halving<T, Bytes / 2>::sum(lo + hi);
    }
  }
};

template <class T>
__attribute__((always_inline)) inline T tree_max(vec_t<T> v) {
  return Halving<T, kVectorBytes>::max(v);
}

template <class T>
__attribute__((always_inline)) inline T tree_sum(vec_t<T> v) {
  return Halving<T, kVectorBytes>::sum(v);
}

}  // namespace fastopt::simd
