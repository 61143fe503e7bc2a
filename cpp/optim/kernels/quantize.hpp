// The quantizer of 8-bit optimizer state (optim/quantization.hpp), per ISA:
// one block's dequantization and quantization. Included by
// optim/kernels/full_precision.cpp, so it is compiled once per ISA without FMA
// contraction. The AVX2 and AVX-512 builds run the vector loops (class
// constants by permutes, no gathers); every lane computes what the scalar
// functions compute, with the same float32 operations, so the codes and
// values are the same on every ISA (the baseline build runs the scalar ones).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "optim/kernels/low_precision.hpp"
#include "optim/quantization.hpp"
#include "runtime/isa_namespace.hpp"
#include "runtime/simd.hpp"

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

using low_precision::bits_of;
using low_precision::float_of;

// The scalars a block is quantized with: a = (|x| · pre) · inv. pre = 2^64 for
// a block whose absmax is below 2^-64, so that 1/absmax stays finite for a
// subnormal absmax (pre is a power of two: exact). absmax 0: every a is 0.
struct BlockScale {
  float pre, inv;
};
FASTOPT_INLINE BlockScale block_scale(float absmax) {
  const float pre = absmax < 0x1.0p-64f ? 0x1.0p64f : 1.0f;
  return {pre, absmax > 0.0f ? 1.0f / (absmax * pre) : 0.0f};
}

// The rank of a >= 0 (optim/quantization.hpp): the class of its binade, or the
// next one from the binade's boundary, then the class's linear rule.
FASTOPT_INLINE float rank_of(float a, const QuantTable& m) {
  a = a > 0.0f ? a : 0.0f;  // NaN: 0
  a = a < 1.0f ? a : 1.0f;  // Inf, and 1 + rounding: 1
  std::int32_t b = static_cast<std::int32_t>(bits_of(a) >> 23) - 96;
  b = b > 0 ? b : 0;
  const int c = m.binade_class[b] + (a >= m.binade_boundary[b] ? 1 : 0);
  const float r = std::rint(a * m.invstep[c] + m.offset[c]);
  return r < m.top_rank[c] ? r : m.top_rank[c];
}

template <bool kSigned>
FASTOPT_INLINE std::uint8_t quantize_one(float x, BlockScale s, const QuantTable& m) {
  float r = rank_of((std::fabs(x) * s.pre) * s.inv, m);
  if constexpr (kSigned) {
    const float below = r < 127.0f ? r : 127.0f;  // the signed map has no -1
    r = x < 0.0f ? 127.0f - below : 127.0f + r;
  }
  return static_cast<std::uint8_t>(static_cast<std::int32_t>(r));
}

// The block's scale ("absmax"): its largest |x| over the finite elements (0 if
// none; Inf and NaN stay confined to their own elements instead of setting the
// whole block's scale). For the signed map, whose most negative value is
// -0.99297 (it has no -1), a negative extreme is divided by that value's
// magnitude, so both extremes are stored exactly and repeated steps do not
// shrink negative moments; capped at FLT_MAX.
template <bool kSigned>
FASTOPT_INLINE float block_absmax(const float* __restrict x, std::size_t n, const QuantTable& m) {
  using VF = simd::vec_t<float>;
  using VI = simd::vec_t<std::int32_t>;
  constexpr std::size_t lanes = simd::Vec<float>::lanes;
  VF pos = {}, neg = {};
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VI bits = reinterpret_cast<VI>(simd::load(x + i));
    VI a = bits & 0x7FFFFFFF;
    a = a < 0x7F800000 ? a : 0;  // Inf, NaN: 0
    if constexpr (kSigned) {
      const VF p = reinterpret_cast<VF>(bits >= 0 ? a : 0), q = reinterpret_cast<VF>(bits < 0 ? a : 0);
      pos = pos > p ? pos : p;
      neg = neg > q ? neg : q;
    } else {
      const VF p = reinterpret_cast<VF>(a);
      pos = pos > p ? pos : p;
    }
  }
  float largest = 0.0f, most_negative = 0.0f;
  for (std::size_t l = 0; l < lanes; ++l) {
    largest = largest > pos[l] ? largest : pos[l];
    most_negative = most_negative > neg[l] ? most_negative : neg[l];
  }
  for (; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!(a <= 3.40282347e38f)) continue;  // Inf, NaN
    if (kSigned && std::signbit(x[i])) most_negative = a > most_negative ? a : most_negative;
    else largest = a > largest ? a : largest;
  }
  if constexpr (kSigned) {
    const float stretched = most_negative / -m.value[0];
    largest = largest > stretched ? largest : stretched;
    largest = largest < 3.40282347e38f ? largest : 3.40282347e38f;
  }
  return largest;
}

#if defined(__AVX2__)
// 8 (AVX2) or 16 (AVX-512) lanes; class tables of 16 entries as one or two
// vectors, read with permutes.
constexpr std::size_t kLanes = simd::Vec<float>::lanes;
using VF = simd::vec_t<float>;
using VI = simd::vec_t<std::int32_t>;
typedef std::uint8_t VB __attribute__((vector_size(kLanes)));

struct ClassTable {
  VF lo, hi;  // entries 0..lanes-1 and lanes..2·lanes-1 (AVX-512: all 16 in lo)
  explicit ClassTable(const float* t) : lo(simd::load(t)), hi(kLanes < kQuantClasses ? simd::load(t + kLanes) : VF{}) {}
  FASTOPT_INLINE VF operator[](VI c) const { return __builtin_shuffle(lo, hi, c); }
};
struct BinadeTable {  // 32 entries: v[0], v[1] (AVX-512) or v[0..3] (AVX2)
  VF v[4];
  explicit BinadeTable(const float* t) : v() {
    for (std::size_t k = 0; k * kLanes < kQuantBinades; ++k) v[k] = simd::load(t + k * kLanes);
  }
  FASTOPT_INLINE VF operator[](VI b) const {
    if constexpr (kLanes == 16) {
      return __builtin_shuffle(v[0], v[1], b);
    } else {  // two permutes of 16 entries and a select
      const VI b16 = b & 15;
      return b >= 16 ? __builtin_shuffle(v[2], v[3], b16) : __builtin_shuffle(v[0], v[1], b16);
    }
  }
};

FASTOPT_INLINE VI widen(const std::uint8_t* p) {  // kLanes codes to int32 lanes
#if defined(__AVX512F__)
  // The mask form: GCC 12's plain one starts from an "undefined" vector that
  // -Wmaybe-uninitialized reports; an all-ones mask compiles to the same instruction.
  const __m512i w = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
  const __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
#endif
  VI v;
  std::memcpy(&v, &w, sizeof v);
  return v;
}

FASTOPT_INLINE void narrow(VI r, std::uint8_t* p) {  // kLanes int32 lanes in [0, 255] to bytes
#if defined(__AVX512F__)
  const VB out = __builtin_convertvector(r, VB);  // vpmovdb
  std::memcpy(p, &out, kLanes);
#else  // GCC builds the bytes one by one from a convertvector here: pack instead
  __m256i v;
  std::memcpy(&v, &r, sizeof v);
  const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(words, words));
#endif
}

template <bool kSigned>
void dequantize_block(const std::uint8_t* __restrict codes, float absmax, float* __restrict out, std::size_t n,
                      const QuantTable& m) {
  const ClassTable c1(m.c1), c0(m.c0);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    VI r = widen(codes + i);
    VI negative = {};
    if constexpr (kSigned) {
      r -= 127;
      negative = r < 0;
      r = negative ? -r : r;
    }
    const VF rf = __builtin_convertvector(r, VF);
    const VF ref = kSigned ? rf : rf + 1.0f;  // ranks of a class start at a power of two
    VI c = (reinterpret_cast<VI>(ref) >> 23) - (kSigned ? 126 : 127);
    c = c > 0 ? c : 0;
    VF v = rf * c1[c] + c0[c];
    if constexpr (kSigned) v = reinterpret_cast<VF>(reinterpret_cast<VI>(v) ^ (negative & static_cast<std::int32_t>(0x80000000u)));
    simd::store(out + i, v * absmax);
  }
  for (; i < n; ++i) out[i] = m.value[codes[i]] * absmax;
}

// The quantizer's tables as vectors, loaded once per block.
struct QuantVectors {
  ClassTable invstep, offset, top;
  BinadeTable classes, boundaries;
  explicit QuantVectors(const QuantTable& m)
      : invstep(m.invstep), offset(m.offset), top(m.top_rank), classes(m.binade_class_f),
        boundaries(m.binade_boundary) {}
};

// The codes of kLanes values, as int32 lanes.
template <bool kSigned>
FASTOPT_INLINE VI codes_of(VF xi, BlockScale s, const QuantVectors& q) {
  VF a = reinterpret_cast<VF>(reinterpret_cast<VI>(xi) & 0x7FFFFFFF) * s.pre * s.inv;
  a = a > 0.0f ? a : 0.0f;
  a = a < 1.0f ? a : 1.0f;
  VI b = (reinterpret_cast<VI>(a) >> 23) - 96;
  b = b > 0 ? b : 0;
  VI c = __builtin_convertvector(q.classes[b], VI);
  c -= a >= q.boundaries[b];  // true is -1
  VF r = a * q.invstep[c] + q.offset[c];
  for (std::size_t l = 0; l < kLanes; ++l) r[l] = __builtin_rintf(r[l]);
  const VF t = q.top[c];
  r = r < t ? r : t;
  if constexpr (kSigned) {
    const VF below = r < 127.0f ? r : 127.0f;
    r = xi < 0.0f ? 127.0f - below : 127.0f + r;
  }
  return __builtin_convertvector(r, VI);
}

template <bool kSigned>
float quantize_block(const float* __restrict x, std::uint8_t* __restrict codes, std::size_t n, const QuantTable& m) {
  const float absmax = block_absmax<kSigned>(x, n, m);
  const BlockScale s = block_scale(absmax);
  const QuantVectors q(m);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) narrow(codes_of<kSigned>(simd::load(x + i), s, q), codes + i);
  for (; i < n; ++i) codes[i] = quantize_one<kSigned>(x[i], s, m);
  return absmax;
}

#else  // baseline: the scalar functions

template <bool kSigned>
void dequantize_block(const std::uint8_t* __restrict codes, float absmax, float* __restrict out, std::size_t n,
                      const QuantTable& m) {
  for (std::size_t i = 0; i < n; ++i) out[i] = m.value[codes[i]] * absmax;
}

template <bool kSigned>
float quantize_block(const float* __restrict x, std::uint8_t* __restrict codes, std::size_t n, const QuantTable& m) {
  const float absmax = block_absmax<kSigned>(x, n, m);
  const BlockScale s = block_scale(absmax);
  for (std::size_t i = 0; i < n; ++i) codes[i] = quantize_one<kSigned>(x[i], s, m);
  return absmax;
}

#endif

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt
