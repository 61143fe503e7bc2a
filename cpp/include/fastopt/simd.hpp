// Portable SIMD vectors for kernels compiled once per ISA: GCC/Clang vector
// extensions sized to the widest registers of the target the file is compiled
// for (16 bytes baseline, 32 with AVX2, 64 with AVX-512). The same source thus
// becomes SSE2, AVX2+FMA or AVX-512 code; horizontal sums run in a fixed lane
// order, so results do not depend on anything but the ISA. A scalar times a
// vector broadcasts the scalar (with AVX-512, as an embedded {1toN} operand).
#pragma once

#include <cstddef>
#include <cstring>

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

template <class T>
__attribute__((always_inline)) inline T reduce_add(vec_t<T> v) {
  T s = v[0];
  for (std::size_t i = 1; i < Vec<T>::lanes; ++i) s += v[i];
  return s;
}

}  // namespace fastopt::simd
