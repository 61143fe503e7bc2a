#include "optim/quantization.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "optim/kernels.hpp"
#include "runtime/runtime.hpp"

namespace fastopt {

namespace {

// The map's constants, computed in double and rounded to float32 once, and its
// values in float32 arithmetic; the NumPy reference computes them with the
// same expressions.
QuantTable make_table(bool is_signed) {
  QuantTable t{};
  t.is_signed = is_signed;
  const int extra = is_signed ? 0 : 1;  // the unsigned map has twice the values per decade
  const double scale[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
  const int one_rank = is_signed ? 128 : 255;
  for (int c = 8; c < kQuantClasses; ++c) {  // the value 1
    t.c1[c] = 0.0f, t.c0[c] = 1.0f;
    t.invstep[c] = 0.0f, t.offset[c] = static_cast<float>(one_rank), t.top_rank[c] = static_cast<float>(one_rank);
  }
  int first_rank = 1;
  for (int d = 0; d < 7; ++d) {
    const int n = 1 << (d + extra), c = d + 1;
    const double step = 0.9 * scale[d] / n;  // value(first_rank + k) = s·(0.1 + 0.9·(k + 0.5)/n)
    t.c1[c] = static_cast<float>(step);
    t.c0[c] = static_cast<float>(scale[d] * (0.1 + 0.45 / n) - first_rank * step);
    t.invstep[c] = static_cast<float>(n / (0.9 * scale[d]));
    t.offset[c] = static_cast<float>(first_rank - (0.1 * n + 0.45) / 0.9);  // the scale cancels
    t.top_rank[c] = static_cast<float>(first_rank + n - 1);
    first_rank += n;
  }
  // The positive values by rank (class of rank r: log2 of r, or of r + 1 unsigned).
  float positive[256] = {};
  for (int r = 1; r < one_rank; ++r) {
    const int c = 31 - __builtin_clz(static_cast<unsigned>(is_signed ? r : r + 1)) + (is_signed ? 1 : 0);
    const float product = static_cast<float>(r) * t.c1[c];  // two float32 operations, as the kernels
    positive[r] = product + t.c0[c];
  }
  positive[one_rank] = 1.0f;
  // Class boundaries: the midpoints between 0 and the smallest value, between
  // each decade's top and the next decade's bottom, and between the largest value and 1.
  double boundary[8];
  int b = 0;
  first_rank = 1;
  boundary[b++] = double(positive[1]) / 2;
  for (int d = 0; d < 7; ++d) {
    first_rank += 1 << (d + extra);  // the rank after decade d
    boundary[b++] = (double(positive[first_rank - 1]) + positive[first_rank]) / 2;
  }
  for (int i = 0; i < kQuantBinades; ++i) {
    const double bottom = i == 0 ? 0.0 : std::ldexp(1.0, i - 31), top = std::ldexp(1.0, i - 30);
    int c = 0;
    t.binade_boundary[i] = std::numeric_limits<float>::quiet_NaN();
    for (int k = 0; k < 8; ++k) {
      const float f = static_cast<float>(boundary[k]);
      if (f <= bottom) ++c;
      else if (f < top) t.binade_boundary[i] = f;  // classes are 7x or more apart: at most one per binade
    }
    t.binade_class[i] = c;
    t.binade_class_f[i] = static_cast<float>(c);
  }
  if (is_signed) {
    t.value[kSignedZeroCode] = 0.0f;
    for (int r = 1; r <= one_rank; ++r) {
      t.value[kSignedZeroCode + r] = positive[r];
      if (r < one_rank) t.value[kSignedZeroCode - r] = -positive[r];
    }
  } else {
    for (int r = 0; r <= one_rank; ++r) t.value[r] = positive[r];
  }
  return t;
}

const QuantTable kSigned = make_table(true);
const QuantTable kUnsigned = make_table(false);

}  // namespace

const QuantTable& quant_table(QuantMap map) { return map == QuantMap::signed_dynamic ? kSigned : kUnsigned; }

namespace {
template <class Block>
void for_each_block(std::size_t n, Block block) {
  const std::size_t blocks = quant_blocks(n);
  auto one = [&](std::int64_t b) {
    const std::size_t begin = static_cast<std::size_t>(b) * kQuantBlock;
    block(static_cast<std::size_t>(b), begin, std::min(kQuantBlock, n - begin));
  };
  if (n < kParallelMinElements || num_threads() == 1) {
    for (std::size_t b = 0; b < blocks; ++b) one(static_cast<std::int64_t>(b));
  } else {
    parallel_for(static_cast<std::int64_t>(blocks), threads_for(n, blocks), one);
  }
}
}  // namespace

void quantize_buffer(const float* x, std::uint8_t* codes, float* absmax, std::size_t n, QuantMap map) {
  const OptimKernels& k = active_optim_kernels();
  const QuantTable& table = quant_table(map);
  const QuantizeKernel quantize = k.quantize[table.is_signed ? 1 : 0];
  for_each_block(n, [&](std::size_t b, std::size_t begin, std::size_t len) {
    absmax[b] = quantize(x + begin, codes + begin, len, table);
  });
}

void dequantize_buffer(const std::uint8_t* codes, const float* absmax, float* out, std::size_t n, QuantMap map) {
  const OptimKernels& k = active_optim_kernels();
  const QuantTable& table = quant_table(map);
  for_each_block(n, [&](std::size_t b, std::size_t begin, std::size_t len) {
    k.dequantize[table.is_signed ? 1 : 0](codes + begin, absmax[b], out + begin, len, table);
  });
}

}  // namespace fastopt
