// Threaded drivers of the loss kernels. Rows are cut into chunks that depend
// only on N, C and D (never on the thread count); each chunk accumulates its
// own dWᵀ partial and loss, and partials are combined in chunk order, so the
// result is bitwise identical for any number of threads.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "loss/loss.hpp"
#include "runtime/runtime.hpp"

namespace fastopt {
namespace {

constexpr std::size_t kMinChunkRows = 128;
constexpr std::size_t kMaxChunks = 16;
constexpr std::size_t kPartialBudgetBytes = std::size_t(32) << 20;
constexpr std::size_t kScoreRowsPerChunk = 1024;

std::size_t saturating_product(std::size_t a, std::size_t b) {
  return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

struct Chunks {
  std::size_t count, rows;
};

Chunks linear_chunks(std::size_t N, std::size_t C, std::size_t D, std::size_t elem) {
  const std::size_t partial_bytes = std::max<std::size_t>(C * D * elem, 1);
  const std::size_t by_memory = std::clamp<std::size_t>(kPartialBudgetBytes / partial_bytes, 1, kMaxChunks);
  const std::size_t by_rows = (N + kMinChunkRows - 1) / kMinChunkRows;
  const std::size_t wanted = std::max<std::size_t>(1, std::min(by_memory, by_rows));
  const std::size_t rows = (N + wanted - 1) / wanted;
  return {(N + rows - 1) / rows, rows};
}

// Scratch reused across calls by the calling thread: a fresh multi-megabyte
// allocation per call costs more in page faults than the loss itself. Each
// use has its own slot (kept apart when one thread needs two at once).
enum WorkspaceSlot { kWeightsSlot, kGatheredRowsSlot, kGatheredWeightsSlot };

template <class T, WorkspaceSlot slot>
T* workspace(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Rows [r0, r1) of the minibatch X[rows], y[rows], copied into this thread's
// scratch; returns the arguments of linear_chunk over them (as rows [0, r1 - r0)).
template <class T>
LinearLossArgs gather_chunk(const LinearLossArgs& a, const std::int64_t* rows, std::size_t r0, std::size_t r1) {
  const std::size_t n = r1 - r0;
  T* X_rows = workspace<T, kGatheredRowsSlot>(n * a.D);
  std::int64_t* y_rows = workspace<std::int64_t, kGatheredRowsSlot>(n);
  double* w_rows = a.weights == nullptr ? nullptr : workspace<double, kGatheredWeightsSlot>(n);
  const T* X = static_cast<const T*>(a.X);
  for (std::size_t r = 0; r < n; ++r) {
    const auto row = static_cast<std::size_t>(rows[r0 + r]);
    std::copy(X + row * a.D, X + (row + 1) * a.D, X_rows + r * a.D);
    y_rows[r] = a.y[row];
    if (w_rows != nullptr) w_rows[r] = a.weights[row];
  }
  LinearLossArgs chunk = a;
  chunk.X = X_rows;
  chunk.y = y_rows;
  chunk.weights = w_rows;
  return chunk;
}

// Whether the class-vectorized kernel runs: when a row's classes fit in
// kMaxClassVectors vectors. Measured side by side (float32, one thread, CPU
// time, interleaved), against the per-class kernel: with AVX-512 2.1x on
// minibatches of 200 digits (D = 65), 1.6x at D = 3073, 1.5x on full batches at
// D = 257 and at C = 40, 0.94x on the full CIFAR-10 shape (10,000 × 3073);
// with AVX2 1.1-1.8x; on baseline 1.0-1.1x.
bool by_class_vectors(const LossKernels& k, int dt, std::size_t C) {
  return C <= kMaxClassVectors * k.lanes[dt];
}

// Whether the class-pair layout runs instead (few classes, D large enough that
// summing each half of its vectors at the end costs little).
constexpr std::size_t kClassPairMinD = 256;
bool by_class_pairs(const LossKernels& k, int dt, std::size_t C, std::size_t D) {
  return C <= 2 * kMaxClassPairs && k.lanes[dt] >= 4 && D >= kClassPairMinD;
}

// W (D × C, then the intercepts' row) in the class-pair layout: groups of G rows
// of W, each as ceil(C / 2) vectors of two classes × G rows (zeros past D and C);
// then the P intercepts.
template <class T>
void pair_weights(const T* W, std::size_t D, std::size_t C, std::size_t L, std::size_t P, bool intercept, T* WG) {
  const std::size_t G = L / 2, CG = (C + 1) / 2, groups = (D + G - 1) / G;
  for (std::size_t g = 0; g < groups; ++g)
    for (std::size_t j = 0; j < CG; ++j)
      for (std::size_t h = 0; h < 2; ++h)
        for (std::size_t i = 0; i < G; ++i) {
          const std::size_t d = g * G + i, c = 2 * j + h;
          WG[(g * CG + j) * L + h * G + i] = d < D && c < C ? W[d * C + c] : T(0);
        }
  const std::size_t size = groups * CG * L;
  if (intercept) {
    std::copy(W + D * C, W + D * C + C, WG + size);
    std::fill(WG + size + C, WG + size + P, T(0));
  }
}

// The per-class kernel's layout of W (D × C, plus the intercepts' row): Wᵀ (C × D),
// then the C intercepts.
template <class T>
void transpose_weights(const T* W, std::size_t D, std::size_t C, bool intercept, T* WT) {
  for (std::size_t d = 0; d < D; ++d)
    for (std::size_t c = 0; c < C; ++c) WT[c * D + d] = W[d * C + c];
  if (intercept) std::copy(W + C * D, W + C * D + C, WT + C * D);
}

template <class T>
double linear_loss_typed(const LossKernels& k, int dt, LossKind kind, const T* W, const T* X,
                         const std::int64_t* y, std::size_t N, std::size_t D, std::size_t C, double delta,
                         PenaltyKind penalty_kind, double reg, double l1_ratio, T* dW, const std::int64_t* rows,
                         const LossWeights& weights, bool intercept) {
  // Three layouts of W: Wᵀ (C × D) for the per-class dot products, W padded to
  // P classes (D × P) for the class-vectorized kernel, or W_G (pair_weights) for
  // the class-pair kernel; the intercepts follow (C, or P, values). All kernels
  // add their gradient into dWᵀ (C × D).
  const bool by_class = by_class_vectors(k, dt, C), by_pairs = by_class && by_class_pairs(k, dt, C, D);
  const std::size_t L = k.lanes[dt];
  const std::size_t P = by_class ? (C + L - 1) / L * L : C;
  const LinearChunkKernel chunk_kernel =
      by_pairs ? k.class_pair_chunk[dt] : (by_class ? k.class_vector_chunk[dt] : k.linear_chunk[dt]);
  const Chunks chunks = linear_chunks(N, C, D, sizeof(T));
  const std::size_t CD = C * D, ldw = partial_stride(D, sizeof(T));
  // The size of W's part in the kernel's layout; the intercepts follow.
  const std::size_t pair_groups = (D + L / 2 - 1) / (L / 2);
  const std::size_t layout_size = by_pairs ? pair_groups * ((C + 1) / 2) * L : (by_class ? P * D : CD);
  const std::size_t w_size = layout_size + (intercept ? P : 0);
  // A chunk's partial: dWᵀ (C rows of D, ldw apart), then the intercepts'.
  const std::size_t part = C * ldw + (intercept ? P : 0);
  const std::size_t W_rows = D + (intercept ? 1 : 0);
  T* WL = workspace<T, kWeightsSlot>(w_size + chunks.count * part);
  T* partials = WL + w_size;
  if (by_pairs) {
    pair_weights(W, D, C, L, P, intercept, WL);
  } else if (by_class) {
    for (std::size_t d = 0; d < W_rows; ++d) {
      std::copy(W + d * C, W + (d + 1) * C, WL + d * P);
      std::fill(WL + d * P + C, WL + (d + 1) * P, T(0));
    }
  } else {
    transpose_weights(W, D, C, intercept, WL);
  }
  std::fill(partials, partials + chunks.count * part, T(0));
  std::vector<double> losses(chunks.count, 0.0);
  const double n_total = static_cast<double>(N) * weights.mean_weight;
  const T* bias = intercept ? WL + layout_size : nullptr;
  const LinearLossArgs args{kind, X, WL, bias, y, weights.sample_weight, N, D, C, ldw, delta, n_total};
  // The work is N·D·P multiply-adds twice, not one pass over N·D elements as in an optimizer step.
  const int threads =
      threads_for_multiply_adds(saturating_product(N * std::max<std::size_t>(D, 1), P), chunks.count);
  const auto n_chunks = static_cast<std::int64_t>(chunks.count);
  parallel_for(n_chunks, threads, [&](std::int64_t i) {
    const std::size_t r0 = static_cast<std::size_t>(i) * chunks.rows;
    const std::size_t r1 = std::min(N, r0 + chunks.rows);
    T* partial = partials + static_cast<std::size_t>(i) * part;
    if (rows == nullptr) {
      losses[i] = chunk_kernel(args, r0, r1, partial);
    } else if (by_class) {  // reads the minibatch's rows where they are
      LinearLossArgs minibatch = args;
      minibatch.rows = rows;
      losses[i] = chunk_kernel(minibatch, r0, r1, partial);
    } else {
      const LinearLossArgs gathered = gather_chunk<T>(args, rows, r0, r1);
      losses[i] = chunk_kernel(gathered, 0, r1 - r0, partial);
    }
  });
  double loss = 0.0;
  for (double l : losses) loss += l;
  loss /= n_total;

  // Σ over chunks, in chunk order, element block by element block.
  constexpr std::size_t kBlock = 2048;
  const auto n_blocks = static_cast<std::int64_t>((part + kBlock - 1) / kBlock);
  T* sum = partials;
  if (chunks.count > 1) {
    parallel_for(n_blocks, threads, [&](std::int64_t b) {
      const std::size_t e0 = static_cast<std::size_t>(b) * kBlock, e1 = std::min(part, e0 + kBlock);
      for (std::size_t i = 1; i < chunks.count; ++i) {
        const T* partial = partials + i * part;
        for (std::size_t e = e0; e < e1; ++e) sum[e] += partial[e];
      }
    });
  }

  // dW = Xᵀ·dS back in W's layout (D × C, and the intercepts' row), plus the
  // penalty's gradient (of the penalized rows; the rest get none).
  const std::size_t penalized = std::min(W_rows, weights.penalized_rows) * C;
  loss += k.penalty[dt](penalty_kind, W, penalized, reg, l1_ratio, dW);
  std::fill(dW + penalized, dW + W_rows * C, T(0));
  for (std::size_t d = 0; d < D; ++d)
    for (std::size_t c = 0; c < C; ++c) dW[d * C + c] = sum[c * ldw + d] + dW[d * C + c];
  if (intercept)
    for (std::size_t c = 0; c < C; ++c) dW[CD + c] = sum[C * ldw + c] + dW[CD + c];
  return loss;
}

}  // namespace

double linear_loss(LossKind kind, DType dtype, const void* W, const void* X, const std::int64_t* y,
                   std::size_t N, std::size_t D, std::size_t C, double delta, PenaltyKind penalty_kind,
                   double reg, double l1_ratio, void* dW, const std::int64_t* rows, const LossWeights& weights,
                   bool intercept) {
  const LossKernels& k = active_loss_kernels();
  if (dtype == DType::f32)
    return linear_loss_typed(k, 0, kind, static_cast<const float*>(W), static_cast<const float*>(X), y, N, D, C,
                             delta, penalty_kind, reg, l1_ratio, static_cast<float*>(dW), rows, weights, intercept);
  return linear_loss_typed(k, 1, kind, static_cast<const double*>(W), static_cast<const double*>(X), y, N, D, C,
                           delta, penalty_kind, reg, l1_ratio, static_cast<double*>(dW), rows, weights, intercept);
}

double scores_loss(LossKind kind, DType dtype, const void* scores, const std::int64_t* y, std::size_t N,
                   std::size_t C, double delta, void* dscores) {
  const LossKernels& k = active_loss_kernels();
  const int dt = dtype == DType::f32 ? 0 : 1;
  const std::size_t elem = dtype == DType::f32 ? sizeof(float) : sizeof(double);
  const std::size_t n_chunks = (N + kScoreRowsPerChunk - 1) / kScoreRowsPerChunk;
  std::vector<double> losses(n_chunks, 0.0);
  const int threads = threads_for(N * C, n_chunks);
  const auto count = static_cast<std::int64_t>(n_chunks);
  parallel_for(count, threads, [&](std::int64_t i) {
    const std::size_t r0 = static_cast<std::size_t>(i) * kScoreRowsPerChunk;
    const std::size_t rows = std::min(N - r0, kScoreRowsPerChunk);
    losses[i] = k.rows[dt](kind, static_cast<const char*>(scores) + r0 * C * elem, y + r0, nullptr, rows, C, delta,
                           static_cast<double>(N), static_cast<char*>(dscores) + r0 * C * elem);
  });
  double loss = 0.0;
  for (double l : losses) loss += l;
  return loss / static_cast<double>(N);
}

namespace {

template <class T>
void linear_scores_typed(const LossKernels& k, int dt, const T* W, const T* X, std::size_t N, std::size_t D,
                         std::size_t C, bool intercept, T* S) {
  T* WT = workspace<T, kWeightsSlot>(C * D + (intercept ? C : 0));
  transpose_weights(W, D, C, intercept, WT);
  LinearLossArgs args{};
  args.X = X;
  args.WT = WT;
  args.bias = intercept ? WT + C * D : nullptr;
  args.N = N;
  args.D = D;
  args.C = C;
  const std::size_t n_chunks = (N + kScoreRowsPerChunk - 1) / kScoreRowsPerChunk;
  const int threads = threads_for_multiply_adds(saturating_product(N * std::max<std::size_t>(D, 1), C), n_chunks);
  parallel_for(static_cast<std::int64_t>(n_chunks), threads, [&](std::int64_t i) {
    const std::size_t r0 = static_cast<std::size_t>(i) * kScoreRowsPerChunk;
    k.scores_chunk[dt](args, r0, std::min(N, r0 + kScoreRowsPerChunk), S);
  });
}

}  // namespace

void linear_scores(DType dtype, const void* W, const void* X, std::size_t N, std::size_t D, std::size_t C,
                   bool intercept, void* S) {
  const LossKernels& k = active_loss_kernels();
  if (dtype == DType::f32)
    linear_scores_typed(k, 0, static_cast<const float*>(W), static_cast<const float*>(X), N, D, C, intercept,
                        static_cast<float*>(S));
  else
    linear_scores_typed(k, 1, static_cast<const double*>(W), static_cast<const double*>(X), N, D, C, intercept,
                        static_cast<double*>(S));
}

double penalty(DType dtype, PenaltyKind kind, const void* W, std::size_t n, double reg, double l1_ratio,
               void* grad) {
  return active_loss_kernels().penalty[dtype == DType::f32 ? 0 : 1](kind, W, n, reg, l1_ratio, grad);
}

}  // namespace fastopt
