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

namespace fastopt::low_precision {

inline std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---------------------------------------------------------------- bfloat16
// bfloat16 is the top half of a float32: widening is exact.
inline float bf16_to_float(std::uint16_t h) { return float_of(std::uint32_t(h) << 16); }

// Round to nearest, ties to even; NaN stays NaN (quieted).
inline std::uint16_t float_to_bf16(float f) {
  const std::uint32_t u = bits_of(f);
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const std::uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<std::uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

// Stochastic rounding: up (away from zero) with probability equal to the
// dropped fraction of an ulp, using the low 16 bits of `random`. Exactly
// unbiased for every finite float32 whose result is finite.
inline std::uint16_t float_to_bf16_stochastic(float f, std::uint32_t random) {
  const std::uint32_t u = bits_of(f);
  const std::uint32_t rounded = (u + (random & 0xFFFFu)) >> 16;
  const std::uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<std::uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

// ---------------------------------------------------------------- float16
// IEEE binary16 <-> binary32, exact widening and round-to-nearest-even
// narrowing, as numpy's astype (M. Dukhan's FP16 library, branch-free).
inline float f16_to_float(std::uint16_t h) {
  const std::uint32_t w = std::uint32_t(h) << 16;
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t two_w = w + w;
  // Normal and Inf/NaN: rebias the exponent by scaling (exact).
  const float normalized = float_of((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // Subnormal: place the mantissa under a 0.5 exponent, subtract 0.5 (exact).
  const float denormalized = float_of((two_w >> 17) | (126u << 23)) - 0.5f;
  const std::uint32_t magnitude = two_w < (1u << 27) ? bits_of(denormalized) : bits_of(normalized);
  return float_of(sign | magnitude);
}

inline std::uint16_t float_to_f16(float f) {
  const std::uint32_t w = bits_of(f);
  const std::uint32_t shl1_w = w + w;
  const std::uint32_t sign = w & 0x80000000u;
  // Scaling up then down rounds the significand to 11 bits (overflow -> inf);
  // adding a power of two at the right exponent rounds subnormals.
  float base = ((f < 0 ? -f : f) * 0x1.0p+112f) * 0x1.0p-110f;
  std::uint32_t bias = shl1_w & 0xFF000000u;
  bias = bias < 0x71000000u ? 0x71000000u : bias;
  base = float_of((bias >> 1) + 0x07800000u) + base;
  const std::uint32_t bits = bits_of(base);
  const std::uint32_t nonsign = ((bits >> 13) & 0x7C00u) + (bits & 0x0FFFu);
  return static_cast<std::uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

// Stochastic rounding to float16 with the low bits of `random`: the float32 is
// truncated toward zero onto float16's grid after adding random bits below
// that grid (13 bits for normal float16 values, up to 23 for subnormal ones),
// which rounds away from zero with probability equal to the dropped fraction.
// Below 2^-24 (the smallest subnormal) the result is 2^-24 with
// probability |f| / 2^-24, drawn from the top 24 bits of `random`.
inline std::uint16_t float_to_f16_stochastic(float f, std::uint32_t random) {
  const std::uint32_t w = bits_of(f);
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t a = w & 0x7FFFFFFFu;
  const std::int32_t exponent = static_cast<std::int32_t>(a >> 23) - 127;
  std::int32_t dropped = 13 + (-14 - exponent > 0 ? -14 - exponent : 0);
  dropped = dropped > 23 ? 23 : dropped;
  const std::uint32_t mask = (1u << dropped) - 1u;
  const std::uint32_t truncated = (a + (random & mask)) & ~mask;  // on float16's grid, or >= 2^16
  const std::uint16_t on_grid = float_to_f16(float_of(sign | truncated));  // exact, or inf
  const float magnitude = float_of(a);
  const bool up = static_cast<float>(random >> 8) < magnitude * 0x1.0p+48f;
  const std::uint16_t tiny = static_cast<std::uint16_t>((sign >> 16) | (up ? 1u : 0u));
  const bool is_nan = a > 0x7F800000u;
  return is_nan ? float_to_f16(f) : (exponent < -24 ? tiny : on_grid);
}

// ------------------------------------------------------------ random bits
// SplitMix64's finalizer: a 64-bit mix, used per block to derive the key of a
// stream from (seed, step, tensor, element index / 2^32).
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline std::uint32_t stream_key(std::uint64_t seed, std::int64_t step, std::uint64_t tensor, std::uint64_t index) {
  std::uint64_t k = mix64(seed);
  k = mix64(k ^ static_cast<std::uint64_t>(step));
  k = mix64(k ^ tensor);
  k = mix64(k ^ (index >> 32));
  return static_cast<std::uint32_t>(k);
}

// C. Wellons' lowbias32 integer hash (a bijection of 32-bit words): the random
// bits of element `index` are hash32(uint32(index) ^ key).
inline std::uint32_t hash32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x21F0AAADu;
  x ^= x >> 15;
  x *= 0x735A2D97u;
  x ^= x >> 15;
  return x;
}

}  // namespace fastopt::low_precision
