// Softmax / multiclass-hinge loss kernels and weight penalties.
//
// Compiled once per ISA like optim/kernels/full_precision.cpp (namespace fastopt::<isa>). The
// fused linear loss walks X in tiles of rows that fit in L2: each tile's
// scores (tile × C, in a small scratch buffer) come from register-blocked dot
// products against Wᵀ, the per-row loss turns them into dS in place, and the
// same tile (still in cache) is read again to add Xᵀ·dS into the gradient. X
// is read from memory once; no N × C array exists.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "runtime/isa_namespace.hpp"
#include "loss/loss.hpp"
#include "runtime/simd.hpp"


namespace fastopt {
namespace FASTOPT_ISA {
namespace {

using std::size_t;
using namespace fastopt::simd;

// ---------------------------------------------------------------- row losses

// e^x for a vector: x = n·ln2 + r with |r| <= ln2/2 (n rounded to nearest by
// the 1.5·2^mantissa trick), e^r by its Taylor polynomial (degree 7 for float,
// 13 for double: truncation below half an ulp), 2^n through the exponent bits.
// x is clamped to [lo, hi], where 2^n stays a normal number: the softmax only
// feeds x <= 0, and e^x below ~1e-38 (float) / ~1e-308 (double) comes out as
// e^lo instead of a subnormal or 0. NaN stays NaN.
template <class T>
struct ExpConstants;
template <>
struct ExpConstants<float> {
  using Int = std::int32_t;
  static constexpr int kMantissa = 23, kBias = 127, kDegree = 7;
  static constexpr float kLo = -87.3365f, kHi = 88.0f, kMagic = 12582912.0f;  // 1.5·2^23
  static constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f, kLog2e = 1.44269504088896341f;
};
template <>
struct ExpConstants<double> {
  using Int = std::int64_t;
  static constexpr int kMantissa = 52, kBias = 1023, kDegree = 13;
  static constexpr double kLo = -708.3964185322641, kHi = 709.0, kMagic = 6755399441055744.0;  // 1.5·2^52
  static constexpr double kLn2Hi = 6.93145751953125e-1, kLn2Lo = 1.42860682030941723212e-6,
                          kLog2e = 1.4426950408889634074;
};

template <class T>
__attribute__((always_inline)) inline vec_t<T> exp_vec(vec_t<T> x) {
  using K = ExpConstants<T>;
  typedef typename K::Int int_vec __attribute__((vector_size(kVectorBytes)));
  const vec_t<T> lo = vec_t<T>{} + K::kLo, hi = vec_t<T>{} + K::kHi;
  x = x < lo ? lo : x;  // comparisons with NaN are false: NaN passes through
  x = x > hi ? hi : x;
  const vec_t<T> n = (x * K::kLog2e + K::kMagic) - K::kMagic;
  const vec_t<T> r = (x - n * K::kLn2Hi) - n * K::kLn2Lo;
  // Σ_{k<=degree} r^k / k!, by Horner from the highest term.
  T coefficient[K::kDegree + 1];
  coefficient[0] = T(1);
  for (int k = 1; k <= K::kDegree; ++k) coefficient[k] = coefficient[k - 1] / T(k);
  vec_t<T> p = vec_t<T>{} + coefficient[K::kDegree];
  for (int k = K::kDegree - 1; k >= 0; --k) p = p * r + coefficient[k];
  const int_vec exponent = (__builtin_convertvector(n, int_vec) + K::kBias) << K::kMantissa;
  vec_t<T> scale;
  std::memcpy(&scale, &exponent, sizeof scale);
  return p * scale;
}

// ln x for a vector of positive normal x (softmax sums are in [1, C]): x =
// m·2^e with m in [√½, √2), ln m = 2·atanh(z) = 2·Σ_k z^(2k+1)/(2k+1) with
// z = (m − 1)/(m + 1), |z| <= 0.1716: terms through z^11 (float) or z^23
// (double) leave the truncation below half an ulp. NaN and +inf pass through.
template <class T>
__attribute__((always_inline)) inline vec_t<T> log_vec(vec_t<T> x) {
  using K = ExpConstants<T>;
  using Int = typename K::Int;
  typedef Int int_vec __attribute__((vector_size(kVectorBytes)));
  constexpr int kTerms = sizeof(T) == 4 ? 6 : 12;
  int_vec bits;
  std::memcpy(&bits, &x, sizeof bits);
  int_vec exponent = (bits >> K::kMantissa) - K::kBias;
  const int_vec mantissa_bits = (bits & ((Int(1) << K::kMantissa) - 1)) | (Int(K::kBias) << K::kMantissa);
  vec_t<T> m;  // in [1, 2)
  std::memcpy(&m, &mantissa_bits, sizeof m);
  const auto high = m > T(1.4142135623730951);
  m = high ? m * T(0.5) : m;
  exponent -= high;  // true is −1: one more power of two
  const vec_t<T> z = (m - T(1)) / (m + T(1));
  const vec_t<T> z2 = z * z;
  vec_t<T> p = vec_t<T>{} + T(1) / T(2 * kTerms - 1);
  for (int k = kTerms - 2; k >= 0; --k) p = p * z2 + T(1) / T(2 * k + 1);
  const vec_t<T> e = __builtin_convertvector(exponent, vec_t<T>);
  const vec_t<T> result = e * K::kLn2Hi + (e * K::kLn2Lo + T(2) * z * p);
  const T infinity = std::numeric_limits<T>::infinity();
  return (x != x) | (x == infinity) ? x : result;
}

// x[i] = e^x[i] for i < n. The last partial vector goes through the same
// vector code (padded), so every element's result is the same function of its
// input wherever it sits: a loss stays bitwise thread-invariant.
template <class T>
void exp_inplace(T* x, size_t n) {
  constexpr size_t L = Vec<T>::lanes;
  size_t i = 0;
  for (; i + L <= n; i += L) store(x + i, exp_vec<T>(load(x + i)));
  if (i < n) {
    T tail[L] = {};
    std::copy(x + i, x + n, tail);
    store(tail, exp_vec<T>(load(tail)));
    std::copy(tail, tail + (n - i), x + i);
  }
}

// Stable softmax of `rows` rows of C scores (row stride C): shift each row by
// its max, exponentiate the whole block at once (vectorized), normalise; d gets
// (softmax − onehot)·weight/n per row. d may alias s (the fused path turns
// scores into dS in place). Returns Σ_i w_i·loss_i.
template <class T>
double softmax_rows(const T* s, const std::int64_t* y, const double* weights, size_t rows, size_t C, T n, T* d) {
  constexpr size_t kBlock = 64;  // rows per exponentiation
  double loss = 0.0;
  for (size_t r0 = 0; r0 < rows; r0 += kBlock) {
    const size_t block = std::min(kBlock, rows - r0);
    T shifted_label[kBlock];
    for (size_t i = 0; i < block; ++i) {
      const T* si = s + (r0 + i) * C;
      T* di = d + (r0 + i) * C;
      T max = si[0];
      for (size_t c = 1; c < C; ++c) max = si[c] > max ? si[c] : max;
      shifted_label[i] = si[y[r0 + i]] - max;  // read before d, which may alias s, is written
      for (size_t c = 0; c < C; ++c) di[c] = si[c] - max;
    }
    exp_inplace(d + r0 * C, block * C);
    for (size_t i = 0; i < block; ++i) {
      T* di = d + (r0 + i) * C;
      const double w = weights == nullptr ? 1.0 : weights[r0 + i];
      T sum = 0;
      for (size_t c = 0; c < C; ++c) sum += di[c];
      loss += w * (std::log(static_cast<double>(sum)) - static_cast<double>(shifted_label[i]));
      for (size_t c = 0; c < C; ++c) di[c] = di[c] / sum;
      di[y[r0 + i]] -= T(1);
      const T factor = T(w);
      for (size_t c = 0; c < C; ++c) di[c] = di[c] * factor / n;
    }
  }
  return loss;
}

// Weston–Watkins hinge of one row; the gradient uses the strict margin > 0. A
// NaN margin (a NaN or infinite score) makes the loss NaN, as max(0, margin)
// does in the reference, and adds nothing to the gradient (NaN > 0 is false).
template <class T>
double hinge_row(const T* s, std::int64_t label, size_t C, T delta, T factor, T n, T* d) {
  const T correct = s[label];
  double loss = 0.0;
  T positive = 0;
  for (size_t c = 0; c < C; ++c) {
    const T margin = s[c] - correct + delta;
    const bool other = static_cast<std::int64_t>(c) != label;
    const bool active = other && margin > T(0);
    if (active || (other && margin != margin)) loss += static_cast<double>(margin);
    d[c] = active ? T(1) : T(0);
    positive += d[c];
  }
  d[label] = -positive;
  for (size_t c = 0; c < C; ++c) d[c] = d[c] * factor / n;
  return loss;
}

template <class T>
double loss_rows(LossKind kind, const void* S_, const std::int64_t* y, const double* weights, size_t rows, size_t C,
                 double delta, double n_total, void* dS_) {
  const T* S = static_cast<const T*>(S_);
  T* dS = static_cast<T*>(dS_);
  const T n = T(n_total);
  if (kind == LossKind::softmax) return softmax_rows(S, y, weights, rows, C, n, dS);
  double loss = 0.0;
  for (size_t i = 0; i < rows; ++i) {
    const double w = weights == nullptr ? 1.0 : weights[i];
    loss += w * hinge_row(S + i * C, y[i], C, T(delta), T(w), n, dS + i * C);
  }
  return loss;
}

// ------------------------------------------------------- register-blocked GEMM

// S[r][c] = Σ_d X[r][d]·WT[c][d] for RB rows × CB classes, in vector registers.
template <class T, int RB, int CB>
void dot_block(const T* X, size_t D, const T* WT, T* S, size_t lds) {
  constexpr size_t L = Vec<T>::lanes;
  vec_t<T> acc[RB][CB] = {};
  size_t d = 0;
  for (; d + L <= D; d += L) {
    vec_t<T> x[RB];
    for (int r = 0; r < RB; ++r) x[r] = load(X + r * D + d);
    for (int c = 0; c < CB; ++c) {
      const vec_t<T> w = load(WT + c * D + d);
      for (int r = 0; r < RB; ++r) acc[r][c] += x[r] * w;
    }
  }
  for (int r = 0; r < RB; ++r) {
    for (int c = 0; c < CB; ++c) {
      T s = reduce_add<T>(acc[r][c]);
      for (size_t k = d; k < D; ++k) s += X[r * D + k] * WT[c * D + k];
      S[r * lds + c] = s;
    }
  }
}

// dWT[c][d] += Σ_r dS[r][c]·x_r[d] for CB classes over `rows` rows (x: row pointers),
// vectorized over D; CB accumulators stay in registers across the rows. dWT's rows
// are ldw apart.
template <class T, int CB>
void axpy_block(const T* const* x, size_t rows, size_t D, const T* dS, size_t lds, T* dWT, size_t ldw) {
  constexpr size_t L = Vec<T>::lanes;
  // DV vectors of D at once: CB·DV independent accumulator chains cover the FMA
  // latency (two classes alone would wait on it), and each dS value, broadcast
  // once, feeds DV multiply-adds instead of one (a load per FMA otherwise). With
  // AVX-512's 32 registers, 2 vectors up to 12 classes (24 accumulators).
  constexpr int DV = CB <= 3 ? 4 : (CB <= (kVectorBytes == 64 ? 12 : 7) ? 2 : 1);
  size_t d = 0;
  if constexpr (DV > 1) {
    for (; d + DV * L <= D; d += DV * L) {
      vec_t<T> acc[DV][CB];
      for (int k = 0; k < DV; ++k)
        for (int c = 0; c < CB; ++c) acc[k][c] = load(dWT + c * ldw + d + k * L);
      for (size_t r = 0; r < rows; ++r) {
        for (int k = 0; k < DV; ++k) {
          const vec_t<T> xv = load(x[r] + d + k * L);
          for (int c = 0; c < CB; ++c) acc[k][c] += dS[r * lds + c] * xv;
        }
      }
      for (int k = 0; k < DV; ++k)
        for (int c = 0; c < CB; ++c) store(dWT + c * ldw + d + k * L, acc[k][c]);
    }
  }
  for (; d + L <= D; d += L) {
    vec_t<T> acc[CB];
    for (int c = 0; c < CB; ++c) acc[c] = load(dWT + c * ldw + d);
    for (size_t r = 0; r < rows; ++r) {
      const vec_t<T> xv = load(x[r] + d);
      for (int c = 0; c < CB; ++c) acc[c] += dS[r * lds + c] * xv;
    }
    for (int c = 0; c < CB; ++c) store(dWT + c * ldw + d, acc[c]);
  }
  // The last D mod L values: the CB sums side by side (CB independent chains,
  // and a row's dS values are contiguous), each still summed over the rows in order.
  for (; d < D; ++d) {
    T a[CB];
    for (int c = 0; c < CB; ++c) a[c] = dWT[c * ldw + d];
    for (size_t r = 0; r < rows; ++r) {
      const T xd = x[r][d];
      for (int c = 0; c < CB; ++c) a[c] += dS[r * lds + c] * xd;
    }
    for (int c = 0; c < CB; ++c) dWT[c * ldw + d] = a[c];
  }
}

// Register budget (32 zmm with AVX-512, 16 ymm/xmm otherwise):
// dot: RB×CB accumulators + RB rows of X + 1 of W; axpy: CB·DV accumulators + DV + 1.
// The gradient takes up to kAxpyOneBlock classes in one pass over D, more in
// blocks of kAxpyClasses. Measured with AVX-512 (float32, D = 3073, one thread):
// blocks of 8 × 2 vectors of D ran 1.1x (C = 16) to 2.4x (C = 64) the speed of
// blocks of 16 × 1; C = 10 in one block of 10 × 2 ran 1.15x blocks of 8 + 2.
constexpr int kDotRows = 4;
constexpr int kDotClasses = kVectorBytes == 64 ? 4 : 2;
constexpr int kAxpyClasses = 8;
constexpr int kAxpyOneBlock = kVectorBytes == 64 ? 12 : 8;

// Calls Block<CB> for the last `left` (< MaxCB) classes, so that a class count
// that is not a multiple of the block takes one more pass, not several.
template <int MaxCB, template <int> class Block, class... Args>
void remainder_block(int left, Args... args) {
  if constexpr (MaxCB > 1) {
    if (left == MaxCB - 1) return Block<MaxCB - 1>::run(args...);
    remainder_block<MaxCB - 1, Block>(left, args...);
  }
}

template <class T, int RB>
struct DotBlock {
  template <int CB>
  struct Of {
    static void run(const T* X, size_t D, const T* WT, T* S, size_t lds) { dot_block<T, RB, CB>(X, D, WT, S, lds); }
  };
};

template <class T>
struct AxpyBlock {
  template <int CB>
  struct Of {
    static void run(const T* const* x, size_t rows, size_t D, const T* dS, size_t lds, T* dWT, size_t ldw) {
      axpy_block<T, CB>(x, rows, D, dS, lds, dWT, ldw);
    }
  };
};

template <class T, int RB>
void dot_rows(const T* X, size_t D, const T* WT, size_t C, T* S) {
  size_t c = 0;
  for (; c + kDotClasses <= C; c += kDotClasses) dot_block<T, RB, kDotClasses>(X, D, WT + c * D, S + c, C);
  if (c < C)
    remainder_block<kDotClasses, DotBlock<T, RB>::template Of>(int(C - c), X, D, WT + c * D, S + c, C);
}

template <class T>
void tile_scores(const T* X, size_t rows, size_t D, const T* WT, size_t C, T* S) {
  size_t r = 0;
  for (; r + kDotRows <= rows; r += kDotRows) dot_rows<T, kDotRows>(X + r * D, D, WT, C, S + r * C);
  for (; r < rows; ++r) dot_rows<T, 1>(X + r * D, D, WT, C, S + r * C);
}

// dWT (C rows of D, ldw apart) += Σ_r dS_rᵀ·x_r over `rows` rows given by pointers; dS
// has row stride lds. Up to kAxpyOneBlock classes go in one block, more in blocks of
// kAxpyClasses. MaxClasses: the most classes a caller's dS rows can hold (a
// bound for the blocks the compiler instantiates).
template <class T, int MaxClasses = std::numeric_limits<int>::max()>
void rows_gradient(const T* const* x, size_t rows, size_t D, const T* dS, size_t lds, size_t C, T* dWT,
                   size_t ldw) {
  constexpr int one_block = std::min(kAxpyOneBlock, MaxClasses), block = std::min(kAxpyClasses, MaxClasses);
  if (C <= size_t(one_block))
    return remainder_block<one_block + 1, AxpyBlock<T>::template Of>(int(C), x, rows, D, dS, lds, dWT, ldw);
  size_t c = 0;
  for (; c + block <= C; c += block) axpy_block<T, block>(x, rows, D, dS + c, lds, dWT + c * ldw, ldw);
  if (c < C) remainder_block<block, AxpyBlock<T>::template Of>(int(C - c), x, rows, D, dS + c, lds, dWT + c * ldw,
                                                                 ldw);
}

template <class T>
void tile_gradient(const T* X, size_t rows, size_t D, const T* dS, size_t C, T* dWT, size_t ldw) {
  const T* x[64];  // tile_rows: at most 64
  for (size_t r = 0; r < rows; ++r) x[r] = X + r * D;
  rows_gradient(x, rows, D, dS, C, C, dWT, ldw);
}

// Rows per tile: the tile of X (read twice) should sit in L2.
template <class T>
size_t tile_rows(size_t D) {
  const size_t budget = (size_t(256) << 10) / sizeof(T);
  const size_t rows = budget / std::max<size_t>(D, 1);
  return std::clamp<size_t>(rows - rows % kDotRows, kDotRows, 64);
}

// S[r][c] += bias[c] for `rows` rows of C scores.
template <class T>
void add_bias(T* S, size_t rows, size_t C, const T* bias) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < C; ++c) S[r * C + c] += bias[c];
}

template <class T>
double linear_chunk(const LinearLossArgs& a, size_t row_begin, size_t row_end, void* dWT_partial) {
  const T* X = static_cast<const T*>(a.X);
  const T* WT = static_cast<const T*>(a.WT);
  T* dWT = static_cast<T*>(dWT_partial);
  const T* bias = static_cast<const T*>(a.bias);
  T* dbias = dWT + a.C * a.ldw;
  const size_t tr = tile_rows<T>(a.D);
  std::vector<T> scores(tr * a.C);
  double loss = 0.0;
  for (size_t r0 = row_begin; r0 < row_end; r0 += tr) {
    const size_t rows = std::min(tr, row_end - r0);
    const T* Xt = X + r0 * a.D;
    tile_scores(Xt, rows, a.D, WT, a.C, scores.data());
    if (bias != nullptr) add_bias(scores.data(), rows, a.C, bias);
    loss += loss_rows<T>(a.kind, scores.data(), a.y + r0, a.weights == nullptr ? nullptr : a.weights + r0, rows,
                         a.C, a.delta, a.n_total, scores.data());
    tile_gradient(Xt, rows, a.D, scores.data(), a.C, dWT, a.ldw);
    if (bias != nullptr)  // the intercepts' gradient: Σ over the rows of dS
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < a.C; ++c) dbias[c] += scores[r * a.C + c];
  }
  return loss;
}

template <class T>
void scores_chunk(const LinearLossArgs& a, size_t row_begin, size_t row_end, void* S_) {
  const T* X = static_cast<const T*>(a.X);
  const T* bias = static_cast<const T*>(a.bias);
  T* S = static_cast<T*>(S_);
  tile_scores(X + row_begin * a.D, row_end - row_begin, a.D, static_cast<const T*>(a.WT), a.C, S + row_begin * a.C);
  if (bias != nullptr) add_bias(S + row_begin * a.C, row_end - row_begin, a.C, bias);
}

// ------------------------------------------------- class-vectorized (small C)

// With few classes a row's scores fit in CV vectors: s = Σ_d x_d·W_P[d], each
// x_d broadcast against a row of W (D × P, padded with zeros), so there are no
// per-class dot products to reduce horizontally — at small D those reductions
// cost as much as the multiply-adds. The row's loss turns s into dS in the same
// registers, and dS is multiplied straight back into the gradient rows.

// Lane c of vector v holds class v·L + c: its index, as a vector of T.
template <class T, int CV>
void class_indices(vec_t<T> (&index)[CV]) {
  constexpr size_t L = Vec<T>::lanes;
  for (int v = 0; v < CV; ++v)
    for (size_t c = 0; c < L; ++c) index[v][c] = T(v * L + c);
}

// The softmax of RB rows held in s (lanes >= C ignored) → s = dS = w·(p − onehot)/n.
// Returns Σ_r w_r·loss_r. Each row's max and Σ exp are horizontal; the logs of
// the sums and the scale factors are computed for all rows at once, in vectors.
template <class T, int CV, int RB>
__attribute__((always_inline)) inline double softmax_in_registers(vec_t<T> (&s)[RB][CV],
                                                                  const vec_t<T> (&index)[CV], size_t C,
                                                                  const std::int64_t (&label)[RB],
                                                                  const double (&weight)[RB], T n) {
  constexpr size_t L = Vec<T>::lanes, padded = (RB + L - 1) / L * L;
  const T classes = T(C), lowest = -std::numeric_limits<T>::infinity(), zero = T(0);
  T sum[padded], scale[padded], shifted_label[RB];
  for (size_t r = RB; r < padded; ++r) sum[r] = scale[r] = T(1);
  for (int r = 0; r < RB; ++r) {
    vec_t<T> highest = vec_t<T>{} + lowest;
    for (int v = 0; v < CV; ++v) {
      const vec_t<T> valid = index[v] < classes ? s[r][v] : vec_t<T>{} + lowest;
      highest = valid > highest ? valid : highest;
    }
    const T max = tree_max<T>(highest);
    shifted_label[r] = s[r][label[r] / L][label[r] % L] - max;
    vec_t<T> total = {};
    for (int v = 0; v < CV; ++v) {
      const vec_t<T> e = exp_vec<T>(s[r][v] - max);
      s[r][v] = index[v] < classes ? e : vec_t<T>{} + zero;
      total += s[r][v];
    }
    sum[r] = tree_sum<T>(total);
    scale[r] = T(weight[r]) / n;  // dS = scale·(e / sum − onehot)
  }
  T log_sum[padded], per_sum[padded];
  for (size_t r = 0; r < padded; r += L) {
    const vec_t<T> sums = load(sum + r);
    store(log_sum + r, log_vec<T>(sums));
    store(per_sum + r, load(scale + r) / sums);
  }
  double loss = 0.0;
  for (int r = 0; r < RB; ++r) {
    const T target = T(label[r]);
    for (int v = 0; v < CV; ++v)
      s[r][v] = index[v] == target ? s[r][v] * per_sum[r] - scale[r] : s[r][v] * per_sum[r];
    loss += weight[r] * (static_cast<double>(log_sum[r]) - static_cast<double>(shifted_label[r]));
  }
  return loss;
}

// Weston–Watkins hinge of one row held in s → s = dS, as hinge_row (NaN margins
// included). Returns w·loss.
template <class T, int CV>
__attribute__((always_inline)) inline double hinge_in_registers(vec_t<T> (&s)[CV], const vec_t<T> (&index)[CV],
                                                                size_t C, std::int64_t label, double w, T delta,
                                                                T n) {
  constexpr size_t L = Vec<T>::lanes;
  T row[CV * L];
  for (int v = 0; v < CV; ++v) store(row + v * L, s[v]);
  const T correct = row[label], classes = T(C), target = T(label), zero = T(0), one = T(1);
  vec_t<T> positive = {};
  for (int v = 0; v < CV; ++v) {
    const vec_t<T> margin = s[v] - correct + delta;
    const auto other = (index[v] != target) & (index[v] < classes);
    const auto active = (margin > zero) & other;
    store(row + v * L, (active | (margin != margin)) & other ? margin : vec_t<T>{} + zero);
    s[v] = active ? vec_t<T>{} + one : vec_t<T>{} + zero;
    positive += s[v];
  }
  double loss = 0.0;
  for (size_t c = 0; c < C; ++c) loss += static_cast<double>(row[c]);
  const T count = tree_sum<T>(positive), scale = T(w) / n;
  for (int v = 0; v < CV; ++v) s[v] = index[v] == target ? vec_t<T>{} - count * scale : s[v] * scale;
  return w * loss;
}

// The rows of one register block: B rows from r0 (tile row n) of a chunk ending
// at row_end, their pointers (also written to x[n ..], for the tile's gradient),
// and the next block's rows (B rows on; the same rows at the chunk's end), which
// the score loops prefetch into L2 a cache line per line of d: left to the
// hardware prefetchers, one core read X at 7 GB/s of its 23, and float64 at
// D = 256 ran 1.8x slower than with this (Xeon, one and two threads).
template <class T, int B>
struct BlockRows {
  size_t row[B];
  const T* x[B];
  const T* next[B];
  BlockRows(const LinearLossArgs& a, size_t r0, size_t row_end, size_t n, const T** tile_x) {
    const T* X = static_cast<const T*>(a.X);
    for (int r = 0; r < B; ++r) {
      row[r] = a.rows != nullptr ? static_cast<size_t>(a.rows[r0 + r]) : r0 + r;
      x[r] = tile_x[n + r] = X + row[r] * a.D;
      const size_t q = r0 + B + r < row_end ? r0 + B + r : r0 + r;
      next[r] = X + (a.rows != nullptr ? static_cast<size_t>(a.rows[q]) : q) * a.D;
    }
  }
};

// The class-lane layout: s[r] = bias + Σ_d x_rd·W_P[d], W_P D × P (P = CV·L,
// zeros beyond C): class c in lane c % L of vector c / L, each x_rd broadcast.
template <class T, int CV>
struct ClassLanes {
  // Rows per register block: RB·CV score vectors plus CV of W in 32 (AVX-512)
  // or 16 registers.
  static constexpr int RB = std::max(1, (kVectorBytes == 64 ? 16 : 8) / CV);

  template <int B>
  static void scores(const LinearLossArgs& a, const BlockRows<T, B>& b, vec_t<T> (&s)[B][CV]) {
    constexpr size_t L = Vec<T>::lanes, P = CV * L, kLine = 64 / sizeof(T);
    const size_t D = a.D;
    const T* WP = static_cast<const T*>(a.WT);
    const T* bias = static_cast<const T*>(a.bias);
    for (int r = 0; r < B; ++r)
      for (int v = 0; v < CV; ++v) s[r][v] = bias != nullptr ? load(bias + v * L) : vec_t<T>{};
    for (size_t d0 = 0; d0 < D; d0 += kLine) {
      for (int r = 0; r < B; ++r) __builtin_prefetch(b.next[r] + d0, 0, 2);
      for (size_t d = d0; d < std::min(D, d0 + kLine); ++d) {
        vec_t<T> w[CV];
        for (int v = 0; v < CV; ++v) w[v] = load(WP + d * P + v * L);
        for (int r = 0; r < B; ++r) {
          const T xd = b.x[r][d];
          for (int v = 0; v < CV; ++v) s[r][v] += xd * w[v];
        }
      }
    }
  }
};

// The class-pair layout, for large D: a vector holds two classes × G = L/2
// consecutive d (lanes [0, G): class 2j, [G, L): class 2j + 1), and x_r[d, d+G)
// is loaded once into both halves. C = 10 with AVX-512 float32 takes 5
// multiply-adds per 8 d instead of 8 (the class lanes leave 6 of 16 idle). With
// X in cache the kernel ran 1.15-1.19x the class lanes at the CIFAR-10 shape,
// 1.2-2.1x at D = 1024 for C = 2-9, 0.99x at D = 256 and 0.84x at D = 128 (the
// halves' sums at the end cost too much there). W_G holds, for each group g of G
// rows of W (zero rows past D) and pair j < CG: W[gG + i][2j + h] at lane hG + i.
template <class T, int CV, int CG>
struct ClassPairs {
  static constexpr size_t L = Vec<T>::lanes, G = L / 2, P = CV * L;
  // CG pair vectors per row: RB·CG accumulators, CG of W and RB of x (the
  // compiler loads a block's x groups first) in 32 (AVX-512) or 16 registers, at
  // most 8 rows (8 row pointers). At 5 rows with CG = 5, accumulators spilled.
  static constexpr int RB = std::clamp((kVectorBytes == 64 ? 32 - CG : 16 - CG) / (CG + 1), 1, 8);

  template <int B>
  static void scores(const LinearLossArgs& a, const BlockRows<T, B>& b, vec_t<T> (&s)[B][CV]) {
    constexpr size_t kLine = 64 / sizeof(T);  // a multiple of G
    const size_t D = a.D, full = D / G * G;
    const T* WG = static_cast<const T*>(a.WT);
    vec_t<T> acc[B][CG] = {};
    const auto group = [&](size_t g, const vec_t<T> (&xg)[B]) {
      vec_t<T> w[CG];
      for (int j = 0; j < CG; ++j) w[j] = load(WG + (g * CG + j) * L);
      for (int r = 0; r < B; ++r)
        for (int j = 0; j < CG; ++j) acc[r][j] += xg[r] * w[j];
    };
    for (size_t d0 = 0; d0 < full; d0 += kLine) {
      for (int r = 0; r < B; ++r) __builtin_prefetch(b.next[r] + d0, 0, 2);
      for (size_t d = d0; d < std::min(full, d0 + kLine); d += G) {
        vec_t<T> xg[B];
        for (int r = 0; r < B; ++r) xg[r] = broadcast_half<T>(b.x[r] + d);
        group(d / G, xg);
      }
    }
    if (full < D) {  // the last D % G values, zero-padded (W_G's rows past D are zero)
      vec_t<T> xg[B];
      for (int r = 0; r < B; ++r) {
        T tail[G] = {};
        std::copy(b.x[r] + full, b.x[r] + D, tail);
        xg[r] = broadcast_half<T>(tail);
      }
      group(full / G, xg);
    }
    // Each half's G lanes summed (in a fixed order) into the class lanes, + bias.
    const T* bias = static_cast<const T*>(a.bias);
    for (int r = 0; r < B; ++r) {
      T row[P] = {};
      for (int j = 0; j < CG; ++j)
        for (size_t h = 0; h < 2; ++h) {
          T sum = acc[r][j][h * G];
          for (size_t i = 1; i < G; ++i) sum += acc[r][j][h * G + i];
          row[2 * j + h] = sum;
        }
      for (int v = 0; v < CV; ++v) s[r][v] = load(row + v * L) + (bias != nullptr ? load(bias + v * L) : vec_t<T>{});
    }
  }
};

// One register block: the scores (by Layout), loss and dS in registers; dS goes to
// dS[n·P ..] (row stride P) and the rows' pointers to x[n ..], for the tile's
// gradient. Returns Σ_r w_r·loss_r.
template <class T, int CV, class Layout, int B>
double block_loss(const LinearLossArgs& a, size_t r0, size_t row_end, const vec_t<T> (&index)[CV], size_t n,
                  T* dS, const T** x) {
  constexpr size_t L = Vec<T>::lanes, P = CV * L;
  const BlockRows<T, B> rows(a, r0, row_end, n, x);
  vec_t<T> s[B][CV];
  Layout::template scores<B>(a, rows, s);
  const T n_total = T(a.n_total);
  std::int64_t label[B];
  double weight[B];
  for (int r = 0; r < B; ++r) {
    label[r] = a.y[rows.row[r]];
    weight[r] = a.weights == nullptr ? 1.0 : a.weights[rows.row[r]];
  }
  double loss = 0.0;
  if (a.kind == LossKind::softmax) {
    loss = softmax_in_registers<T, CV, B>(s, index, a.C, label, weight, n_total);
  } else {
    for (int r = 0; r < B; ++r)
      loss += hinge_in_registers<T, CV>(s[r], index, a.C, label[r], weight[r], T(a.delta), n_total);
  }
  for (int r = 0; r < B; ++r)
    for (int v = 0; v < CV; ++v) store(dS + (n + r) * P + v * L, s[r][v]);
  return loss;
}

// Rows per gradient pass. The gradient reloads and stores all of dWᵀ once per
// pass, so a pass takes several register blocks (their dS, P values a row, wait
// in a buffer): up to kClassVectorTileRows rows, as many as keep the tile's rows
// of X (read again by the gradient) within about 512 KiB of L2.
constexpr size_t kClassVectorTileRows = 64;

template <class T, int RB>
size_t class_vector_tile_rows(size_t D) {
  const size_t rows = (size_t(512) << 10) / (std::max<size_t>(D, 1) * sizeof(T));
  return std::clamp<size_t>(rows / RB * RB, RB, kClassVectorTileRows / RB * RB);
}

// Rows [row_begin, row_end) in tiles: the scores and losses block by block, then
// dWT += Σ_r dS_rᵀ·x_r over the tile (vectorized over D, all lanes busy
// whatever C) and the intercepts' gradient Σ_r dS_r.
template <class T, int CV, class Layout>
double class_vector_rows(const LinearLossArgs& a, size_t row_begin, size_t row_end, T* dWT) {
  constexpr int RB = Layout::RB;
  constexpr size_t L = Vec<T>::lanes, P = CV * L;
  vec_t<T> index[CV];
  class_indices<T, CV>(index);
  const size_t tile = class_vector_tile_rows<T, RB>(a.D);
  alignas(64) T dS[kClassVectorTileRows * P];
  const T* x[kClassVectorTileRows];
  double loss = 0.0;
  for (size_t t0 = row_begin; t0 < row_end; t0 += tile) {
    const size_t t1 = std::min(row_end, t0 + tile);
    size_t n = 0;
    for (; t0 + n + RB <= t1; n += RB) loss += block_loss<T, CV, Layout, RB>(a, t0 + n, row_end, index, n, dS, x);
    // The last rows in blocks of 8, 4, 2, 1 (as fit under RB): a block of one row
    // reads all of W for one multiply-add per load.
    const auto tail = [&](auto rows) {
      constexpr int B = decltype(rows)::value;
      if constexpr (B < RB)
        for (; t0 + n + B <= t1; n += B) loss += block_loss<T, CV, Layout, B>(a, t0 + n, row_end, index, n, dS, x);
    };
    tail(std::integral_constant<int, 8>{});
    tail(std::integral_constant<int, 4>{});
    tail(std::integral_constant<int, 2>{});
    for (; t0 + n < t1; ++n) loss += block_loss<T, CV, Layout, 1>(a, t0 + n, row_end, index, n, dS, x);
    rows_gradient<T, P>(x, n, a.D, dS, P, a.C, dWT, a.ldw);
    if (a.bias != nullptr) {
      T* dbias = dWT + a.ldw * a.C;
      for (int v = 0; v < CV; ++v) {
        vec_t<T> g = load(dbias + v * L);
        for (size_t r = 0; r < n; ++r) g += load(dS + r * P + v * L);
        store(dbias + v * L, g);
      }
    }
  }
  return loss;
}

template <class T>
double class_vector_chunk(const LinearLossArgs& a, size_t row_begin, size_t row_end, void* dWT_partial) {
  constexpr size_t L = Vec<T>::lanes;
  T* dWT = static_cast<T*>(dWT_partial);
  switch ((a.C + L - 1) / L) {
    case 1: return class_vector_rows<T, 1, ClassLanes<T, 1>>(a, row_begin, row_end, dWT);
    case 2: return class_vector_rows<T, 2, ClassLanes<T, 2>>(a, row_begin, row_end, dWT);
    case 3: return class_vector_rows<T, 3, ClassLanes<T, 3>>(a, row_begin, row_end, dWT);
    default: return class_vector_rows<T, 4, ClassLanes<T, 4>>(a, row_begin, row_end, dWT);
  }
}
static_assert(kMaxClassVectors == 4, "class_vector_chunk instantiates 1 .. kMaxClassVectors vectors per row");

// The class-pair chunk: CG = ceil(C / 2) pair vectors (at most kMaxClassPairs).
template <class T, int CG>
double class_pair_rows(const LinearLossArgs& a, size_t row_begin, size_t row_end, T* dWT) {
  constexpr size_t L = Vec<T>::lanes;
  constexpr int CV = int((2 * CG + L - 1) / L);
  return class_vector_rows<T, CV, ClassPairs<T, CV, CG>>(a, row_begin, row_end, dWT);
}

template <class T>
double class_pair_chunk(const LinearLossArgs& a, size_t row_begin, size_t row_end, void* dWT_partial) {
  T* dWT = static_cast<T*>(dWT_partial);
  switch ((a.C + 1) / 2) {
    case 1: return class_pair_rows<T, 1>(a, row_begin, row_end, dWT);
    case 2: return class_pair_rows<T, 2>(a, row_begin, row_end, dWT);
    case 3: return class_pair_rows<T, 3>(a, row_begin, row_end, dWT);
    case 4: return class_pair_rows<T, 4>(a, row_begin, row_end, dWT);
    default: return class_pair_rows<T, 5>(a, row_begin, row_end, dWT);
  }
}
static_assert(kMaxClassPairs == 5, "class_pair_chunk instantiates 1 .. kMaxClassPairs pairs per row");

// ------------------------------------------------------------------ penalties

template <class T>
T sign(T w) {
  return w > T(0) ? T(1) : (w < T(0) ? T(-1) : T(0));
}

// l2 = reg·Σw², l1 = reg·Σ|w|, elastic_net = reg·(l1_ratio·Σ|w| + (1 − l1_ratio)·Σw²).
template <class T>
double penalty_kernel(PenaltyKind kind, const void* W_, size_t n, double reg, double l1_ratio, void* grad_) {
  const T* W = static_cast<const T*>(W_);
  T* grad = static_cast<T*>(grad_);
  double sum_sq = 0.0, sum_abs = 0.0;
#pragma omp simd reduction(+ : sum_sq, sum_abs)
  for (size_t i = 0; i < n; ++i) {
    const double w = static_cast<double>(W[i]);
    sum_sq += w * w;
    sum_abs += std::fabs(w);
  }
  if (grad != nullptr) {
    if (kind == PenaltyKind::l2) {
      const T two_reg = T(2.0 * reg);
      for (size_t i = 0; i < n; ++i) grad[i] = two_reg * W[i];
    } else if (kind == PenaltyKind::l1) {
      const T r = T(reg);
      for (size_t i = 0; i < n; ++i) grad[i] = r * sign(W[i]);
    } else {
      const T l1 = T(reg * l1_ratio), l2 = T(2.0 * reg * (1.0 - l1_ratio));
      for (size_t i = 0; i < n; ++i) grad[i] = l1 * sign(W[i]) + l2 * W[i];
    }
  }
  switch (kind) {
    case PenaltyKind::l2: return reg * sum_sq;
    case PenaltyKind::l1: return reg * sum_abs;
    default: return reg * (l1_ratio * sum_abs + (1.0 - l1_ratio) * sum_sq);
  }
}

const LossKernels kKernels = {
    {loss_rows<float>, loss_rows<double>},
    {linear_chunk<float>, linear_chunk<double>},
    {scores_chunk<float>, scores_chunk<double>},
    {class_vector_chunk<float>, class_vector_chunk<double>},
    {class_pair_chunk<float>, class_pair_chunk<double>},
    {Vec<float>::lanes, Vec<double>::lanes},
    {penalty_kernel<float>, penalty_kernel<double>},
};

}  // namespace
}  // namespace FASTOPT_ISA

const LossKernels& FASTOPT_CONCAT(loss_kernels_, FASTOPT_ISA)() { return FASTOPT_ISA::kKernels; }

}  // namespace fastopt
