// float16 and bfloat16 storage: conversions to and from float32, rounding to
// nearest even and stochastic rounding, and the counter-based random bits the
// latter uses. Branch-free integer and float operations only, so the loops
// that call them vectorize; every function gives the same bits on every ISA
// (IEEE float32 arithmetic, no FMA contraction, no flush-to-zero assumed).
//
// The NumPy reference (fastopt/reference/precision.py) computes the same bits
// with ml_dtypes and NumPy integer arithmetic; the tests check they agree.
#pragma once

#include <cstdint>
#include <cstring>

// Forced inline: the kernels' loops vectorize only if these are inlined, and
// GCC's size heuristics would otherwise keep the float16 ones out of line.
#define FASTOPT_INLINE inline __attribute__((always_inline))

namespace fastopt::low_precision {

FASTOPT_INLINE std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

FASTOPT_INLINE float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// c ? a : b as bit operations: GCC if-converts these where it would not
// vectorize a ?: on some targets (SSE2, AVX2).
FASTOPT_INLINE std::uint32_t select(bool c, std::uint32_t a, std::uint32_t b) {
  const std::uint32_t mask = 0u - static_cast<std::uint32_t>(c);
  return (a & mask) | (b & ~mask);
}

// ---------------------------------------------------------------- bfloat16
// bfloat16 is the top half of a float32: widening is exact.
FASTOPT_INLINE float bf16_to_float(std::uint16_t h) { return float_of(std::uint32_t(h) << 16); }

// Round to nearest, ties to even; NaN stays NaN (quieted).
FASTOPT_INLINE std::uint16_t float_to_bf16(float f) {
  const std::uint32_t u = bits_of(f);
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const std::uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<std::uint16_t>(select((u & 0x7FFFFFFFu) > 0x7F800000u, nan, rounded));
}

// Stochastic rounding: up (away from zero) with probability equal to the
// dropped fraction of an ulp, using the low 16 bits of `random`. Exactly
// unbiased for every finite float32 whose result is finite.
FASTOPT_INLINE std::uint16_t float_to_bf16_stochastic(float f, std::uint32_t random) {
  const std::uint32_t u = bits_of(f);
  const std::uint32_t rounded = (u + (random & 0xFFFFu)) >> 16;
  const std::uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<std::uint16_t>(select((u & 0x7FFFFFFFu) > 0x7F800000u, nan, rounded));
}

// ---------------------------------------------------------------- float16
// IEEE binary16 <-> binary32, exact widening and round-to-nearest-even
// narrowing, as numpy's astype (M. Dukhan's FP16 library, branch-free).
FASTOPT_INLINE float f16_to_float(std::uint16_t h) {
  const std::uint32_t w = std::uint32_t(h) << 16;
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t two_w = w + w;
  // Normal and Inf/NaN: rebias the exponent by scaling (exact).
  const float normalized = float_of((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // Subnormal: place the mantissa under a 0.5 exponent, subtract 0.5 (exact).
  const float denormalized = float_of((two_w >> 17) | (126u << 23)) - 0.5f;
  const std::uint32_t magnitude = select(two_w < (1u << 27), bits_of(denormalized), bits_of(normalized));
  return float_of(sign | magnitude);
}

FASTOPT_INLINE std::uint16_t float_to_f16(float f) {
  const std::uint32_t w = bits_of(f);
  const std::uint32_t shl1_w = w + w;
  const std::uint32_t sign = w & 0x80000000u;
  // Scaling up then down rounds the significand to 11 bits (overflow -> inf);
  // adding a power of two at the right exponent rounds subnormals.
  float base = (float_of(w & 0x7FFFFFFFu) * 0x1.0p+112f) * 0x1.0p-110f;
  std::uint32_t bias = shl1_w & 0xFF000000u;
  bias = select(bias < 0x71000000u, 0x71000000u, bias);
  base = float_of((bias >> 1) + 0x07800000u) + base;
  const std::uint32_t bits = bits_of(base);
  const std::uint32_t nonsign = ((bits >> 13) & 0x7C00u) + (bits & 0x0FFFu);
  return static_cast<std::uint16_t>((sign >> 16) | select(shl1_w > 0xFF000000u, 0x7E00u, nonsign));
}

// Stochastic rounding to float16 with the low bits of `random`: the float32 is
// truncated toward zero onto float16's grid after adding random bits below
// that grid (13 bits for normal float16 values, up to 23 for subnormal ones),
// which rounds away from zero with probability equal to the dropped fraction.
// Below 2^-24 (the smallest subnormal) the result is 2^-24 with
// probability |f| / 2^-24, drawn from the top 24 bits of `random`.
FASTOPT_INLINE std::uint16_t float_to_f16_stochastic(float f, std::uint32_t random) {
  const std::uint32_t w = bits_of(f);
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t a = w & 0x7FFFFFFFu;
  const std::uint32_t biased = a >> 23;  // float32's biased exponent; float16's subnormals lie below 113
  // Bits below float16's grid: 13 from a biased exponent of 113 (2^-14) up, one
  // more per binade below, at most 23 (values under 2^-24 take the `tiny` path).
  std::uint32_t dropped = select(biased < 113u, 13u + 113u - biased, 13u);
  dropped = select(dropped > 23u, 23u, dropped);
  const std::uint32_t mask = (1u << dropped) - 1u;
  const std::uint32_t truncated = (a + (random & mask)) & ~mask;  // on float16's grid, or >= 2^16
  const std::uint32_t on_grid = float_to_f16(float_of(sign | truncated));  // exact, or inf
  const float magnitude = float_of(a);
  const bool up = static_cast<float>(random >> 8) < magnitude * 0x1.0p+48f;
  const std::uint32_t tiny = (sign >> 16) | static_cast<std::uint32_t>(up);
  const std::uint32_t rounded = select(biased < 103u, tiny, on_grid);  // 103: 2^-24
  return static_cast<std::uint16_t>(select(a > 0x7F800000u, float_to_f16(f), rounded));
}

// ------------------------------------------------------- storage element types
// The element types of low-precision buffers, as kernels see them: 16 bits of
// storage with widening loads and rounding stores. Scoped enums, not structs:
// distinct types for overloading that stay scalars the vectorizer handles.
enum class bfloat16_t : std::uint16_t {};
enum class float16_t : std::uint16_t {};

FASTOPT_INLINE float load(float x) { return x; }
FASTOPT_INLINE double load(double x) { return x; }
FASTOPT_INLINE float load(bfloat16_t x) { return bf16_to_float(static_cast<std::uint16_t>(x)); }
FASTOPT_INLINE float load(float16_t x) { return f16_to_float(static_cast<std::uint16_t>(x)); }

// Round to nearest even.
FASTOPT_INLINE void store(float* p, float x) { *p = x; }
FASTOPT_INLINE void store(double* p, double x) { *p = x; }
FASTOPT_INLINE void store(bfloat16_t* p, float x) { *p = static_cast<bfloat16_t>(float_to_bf16(x)); }
FASTOPT_INLINE void store(float16_t* p, float x) { *p = static_cast<float16_t>(float_to_f16(x)); }

// Round stochastically with the given random bits.
FASTOPT_INLINE void store_stochastic(bfloat16_t* p, float x, std::uint32_t random) {
  *p = static_cast<bfloat16_t>(float_to_bf16_stochastic(x, random));
}
FASTOPT_INLINE void store_stochastic(float16_t* p, float x, std::uint32_t random) {
  *p = static_cast<float16_t>(float_to_f16_stochastic(x, random));
}

// ------------------------------------------------------------ random bits
// SplitMix64's finalizer: a 64-bit mix, used per block to derive the key of a
// stream from (seed, step, tensor, element index / 2^32).
FASTOPT_INLINE std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

FASTOPT_INLINE std::uint32_t stream_key(std::uint64_t seed, std::int64_t step, std::uint64_t tensor, std::uint64_t index) {
  std::uint64_t k = mix64(seed);
  k = mix64(k ^ static_cast<std::uint64_t>(step));
  k = mix64(k ^ tensor);
  k = mix64(k ^ (index >> 32));
  return static_cast<std::uint32_t>(k);
}

// C. Wellons' lowbias32 integer hash (a bijection of 32-bit words): the random
// bits of element `index` are hash32(uint32(index) ^ key).
FASTOPT_INLINE std::uint32_t hash32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x21F0AAADu;
  x ^= x >> 15;
  x *= 0x735A2D97u;
  x ^= x >> 15;
  return x;
}

}  // namespace fastopt::low_precision
