// Blockwise 8-bit optimizer state (state_dtype="int8"): the quantization maps
// and the constants of the quantizer, shared by the per-ISA kernels
// (optim/kernels/quantize.hpp) and the driver (optim/step.cpp).
//
// A state buffer of n elements is stored as n uint8 codes and one float32
// absmax per block of kQuantBlock elements (StateShape::block; the last block
// may be shorter). An element is map[code] · absmax of its block. A step
// dequantizes each block, runs the rule's float32 arithmetic, and requantizes
// with the block's new absmax: code = the map value nearest to x / absmax.
//
// The maps are the dynamic ("dynamic tree") maps of Dettmers et al., "8-bit
// Optimizers via Block-wise Quantization" (2022), as bitsandbytes builds them:
// seven decades 10^(d-6), d = 0..6, each holding n_d values spaced evenly,
//   s_d · (0.1 + 0.9 · (k + 0.5) / n_d),  k = 0 .. n_d - 1,
// plus 0 and 1. The signed map (first moments) has n_d = 2^d per sign (127
// positive, 127 negative values: codes 0..126 negative, most negative first;
// 127 is zero; 128..254 positive; 255 is 1). The unsigned map (second moments)
// has n_d = 2^(d+1): code 0 is zero, 1..254 the values, 255 is 1.
//
// Both directions are arithmetic rather than searches or table gathers, so
// that they vectorize. Ranks count a map's values from 0 up (rank r of the
// signed map is code 127 ± r); a map's values fall into "classes": 0, the
// seven decades, and 1. Dequantizing: the class of rank r is read off the
// float32 exponent of r (signed) or r + 1 (unsigned), whose ranks start each
// decade at a power of two; the value is r · c1 + c0 with the class's
// constants (the value table holds exactly these float32 results).
// Quantizing a = |x| / absmax (NaN as 0, capped at 1): its class is that of
// its binade's bottom, or the next one if a reaches the one class boundary the
// binade holds (a midpoint between two classes' neighbouring values); its
// rank is rint(a · invstep + offset) with the class's constants, at most the
// class's top rank. Every operation is one float32 IEEE operation, so every
// ISA and the NumPy reference (fastopt/reference/quantization.py) give the
// same codes; a value within float32 rounding of a midpoint between two map
// values may go to either (the same one everywhere).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastopt {

constexpr std::size_t kQuantBlock = 256;

// Which map a state buffer uses when stored in 8 bits (a rule's StateSpec).
enum class QuantMap : std::uint8_t { none, signed_dynamic, unsigned_dynamic };

// One map's value table and the quantizer's constants (in float32, as the
// kernels use them). Classes: 0 is the value 0, 1..7 the decades, 8 the
// value 1 (entries 9..15 repeat class 8, so a vector of 16 holds them).
constexpr int kQuantClasses = 16;
constexpr int kQuantBinades = 32;  // binade b: a in [2^(b-31), 2^(b-30)); b = 0 also holds everything below
struct QuantTable {
  float value[256];  // the value of each code
  // Dequantizing, by class: value = r · c1 + c0.
  float c1[kQuantClasses], c0[kQuantClasses];
  // Quantizing: the class of a binade's bottom, and the boundary in it (NaN:
  // none) from which a belongs to the next class.
  std::int32_t binade_class[kQuantBinades];
  float binade_class_f[kQuantBinades];  // the same as floats, for the vector loops' permutes
  float binade_boundary[kQuantBinades];
  // By class: rank = min(rint(a · invstep + offset), top_rank).
  float invstep[kQuantClasses], offset[kQuantClasses], top_rank[kQuantClasses];
  bool is_signed;
};
const QuantTable& quant_table(QuantMap map);  // map != none

// Number of blocks (of absmax scales) of a buffer of n elements.
constexpr std::size_t quant_blocks(std::size_t n) { return n / kQuantBlock + (n % kQuantBlock != 0); }

// The code of a signed map's zero: the value a buffer of zeros is stored with.
constexpr std::uint8_t kSignedZeroCode = 127;

// A whole buffer of n elements, block by block with the active ISA's kernels
// (threaded for large n): x to codes and absmax (quant_blocks(n) of them), and
// back. The codes are those a step stores for the same values.
void quantize_buffer(const float* x, std::uint8_t* codes, float* absmax, std::size_t n, QuantMap map);
void dequantize_buffer(const std::uint8_t* codes, const float* absmax, float* out, std::size_t n, QuantMap map);

}  // namespace fastopt
