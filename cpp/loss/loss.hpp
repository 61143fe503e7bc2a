// Loss kernels (softmax cross-entropy, multiclass hinge, weight penalties):
// the contract between loss/kernels/loss.cpp (per ISA), loss/loss.cpp (threaded
// driver) and the bindings. Pure C++, no pybind11.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/dtype.hpp"

namespace fastopt {

enum class LossKind : int { softmax, hinge };
enum class PenaltyKind : int { l2, l1, elastic_net };

// Losses of rows of scores. For each row i of S (rows × C, row stride C), with
// weight w_i (weights[i], or 1 when weights is null):
// softmax: loss_i = log Σ_c exp(s_c − max) − (s_y − max), dS = w_i·(softmax(s) − onehot(y)) / n_total;
// hinge:   loss_i = Σ_{c≠y} max(0, s_c − s_y + delta), dS_c = w_i·[margin_c > 0] / n_total,
//          dS_y = −w_i·(number of positive margins) / n_total.
// Returns Σ_i w_i·loss_i in double. dS may alias S (in-place).
using LossRowsKernel = double (*)(LossKind kind, const void* S, const std::int64_t* y, const double* weights,
                                  std::size_t rows, std::size_t C, double delta, double n_total, void* dS);

// One chunk of the fused linear-classifier loss: rows [row_begin, row_end) of X
// (N × D) against W given transposed (WT: C × D). Adds Σ_i x_iᵀ·dS_i (dS scaled by
// w_i/n_total) to dWT_partial (C rows of D, ldw apart) and returns the chunk's Σ
// w_i·loss_i. Tiles of rows stay in cache between the scores and the gradient: one
// pass over X, no N × C array. With a bias (C intercepts: an implicit column of
// ones in X), scores get + bias and dWT_partial[C·ldw .. C·ldw + C) receives Σ_i dS_i.
struct LinearLossArgs {
  LossKind kind;
  const void* X;
  const void* WT;
  const void* bias;       // C values, or null
  const std::int64_t* y;
  const double* weights;  // per row of X, or null (all 1)
  std::size_t N, D, C;
  std::size_t ldw;  // row stride of dWT_partial, >= D (see partial_stride)
  double delta;
  double n_total;  // the data loss's denominator
  // The class-vectorized kernel reads a minibatch in place: row r of the chunk
  // is row rows[r] of X (and of y, weights); null: row r itself. The per-class
  // kernel takes gathered rows instead (rows is null).
  const std::int64_t* rows = nullptr;
};
using LinearChunkKernel = double (*)(const LinearLossArgs& a, std::size_t row_begin, std::size_t row_end,
                                     void* dWT_partial);

// The class-vectorized chunk, for few classes (C <= kMaxClassVectors · lanes):
// the same loss and gradient, with W in its own layout, padded: a.WT holds W_P
// (D × P, P = C rounded up to whole vectors, zeros beyond C) and a.bias P
// intercepts (or null). A row's C scores are CV = P / lanes vectors, Σ_d
// x_d · W_P[d] with x_d broadcast: no horizontal sums, no transpose of W; its
// loss and dS stay in those registers. The gradient goes, as the per-class
// kernel's, into dWT_partial (C × D, vectorized over D), then P values for the
// intercepts (the first C meaningful).
constexpr std::size_t kMaxClassVectors = 4;

// The class-pair chunk, for few classes and large D (C <= 2 · kMaxClassPairs,
// lanes >= 4): the same loss and gradient with W in a third layout. A vector holds
// two classes × G = lanes / 2 consecutive rows of W: a.WT holds W_G, for each
// group g of G rows (zero rows past D) CG = ceil(C / 2) vectors, vector j with
// W[g·G + i][2j + h] at lane h·G + i; a.bias holds P intercepts as for the
// class-vectorized chunk. Each x_r[d, d + G) is broadcast to both halves, so a
// row takes CG multiply-adds per G values of d instead of G · ceil(C / lanes).
constexpr std::size_t kMaxClassPairs = 5;

// The row stride of a dWT partial: D, or D plus one cache line when rows D
// elements apart would be a multiple of 4 KiB apart. The gradient reads the
// rows of X and updates the rows of dWT at the same offset d at once; at such
// strides all of them fall into one set of the L1 cache and evict each other
// (float64 at D = 1024 ran at 0.8 of the speed of D = 1032).
inline std::size_t partial_stride(std::size_t D, std::size_t element_size) {
  return D * element_size % 4096 == 0 ? D + 64 / element_size : D;
}

// Penalty of n weights: returns its value (accumulated in double); when grad is
// not null, writes the gradient (l2: 2·reg·w, l1: reg·sign(w), elastic_net:
// reg·(l1_ratio·sign(w) + (1 − l1_ratio)·2w)).
using PenaltyKernel = double (*)(PenaltyKind kind, const void* W, std::size_t n, double reg, double l1_ratio,
                                 void* grad);

// Scores S[r] = X[r]·W (+ bias) of rows [row_begin, row_end) of X, written to S
// (row stride C), with a.WT, a.bias as for the per-class chunk (C × D, C
// intercepts or null); the loss fields of `a` are not read. Each row's scores
// depend only on that row: the same bits for any chunking or thread count.
using LinearScoresKernel = void (*)(const LinearLossArgs& a, std::size_t row_begin, std::size_t row_end, void* S);

struct LossKernels {
  LossRowsKernel rows[2];  // indexed by DType
  LinearChunkKernel linear_chunk[2];
  LinearScoresKernel scores_chunk[2];
  LinearChunkKernel class_vector_chunk[2];
  LinearChunkKernel class_pair_chunk[2];
  std::size_t lanes[2];  // vector lanes of float, double: P is C rounded up to a multiple
  PenaltyKernel penalty[2];
};

const LossKernels& loss_kernels_baseline();
const LossKernels& loss_kernels_avx2();
const LossKernels& loss_kernels_avx512();

// How the data loss weighs rows, and which rows of W the penalty covers.
struct LossWeights {
  // Per row of X (null: all 1). Over n rows the data loss is
  // Σ w_i·loss_i / (n·mean_weight): over all N rows, with mean_weight the mean
  // of w, the weighted mean; over a minibatch, an unbiased estimate of it.
  const double* sample_weight = nullptr;
  double mean_weight = 1.0;
  // The penalty covers the first penalized_rows rows of W (D × C); the rows
  // after them (the bias row of the bias trick) are not penalized.
  std::size_t penalized_rows = SIZE_MAX;
};

// Drivers (loss/loss.cpp), using the active ISA and thread settings.
// dW (W's shape and dtype) receives the gradient of data loss + penalty; returns the loss.
// W is D × C, or with `intercept` (D + 1) × C whose last row is the intercept:
// scores = X·W[:D] + W[D], the bias trick without a column of ones in X.
// With `rows` (N indices), the loss is over the minibatch X[rows], y[rows]: each
// chunk gathers its own rows (in parallel, into cache) and the result is bitwise
// that of the call on the gathered arrays.
double linear_loss(LossKind kind, DType dtype, const void* W, const void* X, const std::int64_t* y,
                   std::size_t N, std::size_t D, std::size_t C, double delta, PenaltyKind penalty,
                   double reg, double l1_ratio, void* dW, const std::int64_t* rows = nullptr,
                   const LossWeights& weights = {}, bool intercept = false);
// From scores (N × C): dscores (N × C) receives the gradient; returns the mean loss.
double scores_loss(LossKind kind, DType dtype, const void* scores, const std::int64_t* y, std::size_t N,
                   std::size_t C, double delta, void* dscores);
double penalty(DType dtype, PenaltyKind kind, const void* W, std::size_t n, double reg, double l1_ratio,
               void* grad);
// S (N × C) = X·W[:D] (+ W[D] with `intercept`): the linear classifier's scores,
// threaded over rows (a prediction or a validation score without BLAS, whose
// threads would keep spinning on the cores the next loss call needs).
void linear_scores(DType dtype, const void* W, const void* X, std::size_t N, std::size_t D, std::size_t C,
                   bool intercept, void* S);

}  // namespace fastopt
