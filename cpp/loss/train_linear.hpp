// The native minibatch training loop of a linear classifier: seeded sampling,
// the fused loss (loss.hpp) and the fused update (optim.hpp) per iteration,
// with no Python in between. Pure C++, no pybind11.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "loss/loss.hpp"
#include "optim/registry.hpp"

namespace fastopt {

__extension__ typedef unsigned __int128 uint128;  // GCC/Clang, like the SIMD code

// SplitMix64 (Steele, Lea & Flood 2014): the whole state is one uint64, so a
// Python caller can hold it between calls and the sequence is easy to restate
// in plain Python (fastopt/reference/training.py does, and the tests compare).
struct SplitMix64 {
  std::uint64_t state;

  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n), n >= 1, without modulo bias (Lemire 2019).
  std::uint64_t below(std::uint64_t n) {
    uint128 m = static_cast<uint128>(next()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<uint128>(next()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }
};

// How minibatches are drawn.
//   epochs:            per epoch, a Fisher–Yates shuffle of 0..N-1 (started from
//                      the identity), cut into consecutive batches of batch_size
//                      rows; the last batch of an epoch may be smaller.
//   with_replacement:  per iteration, batch_size rows drawn uniformly (the course).
enum class Sampling : int { epochs, with_replacement };

// Fills idx with the rows of `count` epochs (epochs: count·N indices, batch
// boundaries every batch_size within each epoch) or `count` iterations
// (with_replacement: count·batch_size indices). Exposed for the tests.
void draw_minibatch_indices(Sampling sampling, std::size_t N, std::size_t batch_size, std::size_t count,
                            SplitMix64& rng, std::int64_t* idx);

// The data and loss of a linear classifier: X (N × D, C-contiguous), labels y in
// [0, C), loss and penalty as linear_loss() takes them.
struct LinearProblem {
  LossKind kind;
  DType dtype;
  const void* X;
  const std::int64_t* y;
  std::size_t N, D, C;
  double delta;
  PenaltyKind penalty;
  double reg, l1_ratio;
  LossWeights weights;  // sample weights (per row of X) and the penalized rows of W
  bool intercept = false;  // W has D + 1 rows, the last the intercept (linear_loss)
};

// Limits of one call, so that its per-update arrays (learning rates, losses:
// 8 bytes each) and the index arrays of draw_minibatch_indices stay below 1 and
// 2 GiB. Longer runs are several calls; a SplitMix64 continues across them.
constexpr std::size_t kMaxUpdatesPerCall = std::size_t(1) << 26;
constexpr std::size_t kMaxIndicesPerCall = std::size_t(1) << 28;

// Number of updates `count` epochs or iterations make; empty when it would
// exceed kMaxUpdatesPerCall (overflow included).
std::optional<std::size_t> updates_in(Sampling sampling, std::size_t N, std::size_t batch_size, std::size_t count);
// Number of indices draw_minibatch_indices writes; empty above kMaxIndicesPerCall.
std::optional<std::size_t> indices_in(Sampling sampling, std::size_t N, std::size_t batch_size, std::size_t count);

// Runs updates_in(...) iterations of: draw a minibatch of rows, (loss, dW) =
// linear_loss over X[rows], y[rows] (gathered chunk by chunk, in parallel), step
// the optimizer on W. W and its optimizer state are the tensor `w` (slot kGrad
// is the loop's own buffer); update u uses learning rate lr[u] and step number
// first_step + u. losses[u] receives the minibatch loss before update u. Every
// call is the one a Python loop would make with the same indices, so the result
// is bitwise the same.
//
// `should_stop`, if given, is asked after every epoch (or iteration); when it
// says true the loop stops there. Returns the number of epochs (iterations) done.
std::size_t train_linear(const LinearProblem& problem, Sampling sampling, std::size_t batch_size,
                         std::size_t count, SplitMix64& rng, const RuleSettings& optimizer, const double* lr,
                         std::int64_t first_step, TensorBuffers w, double* losses,
                         const std::function<bool()>& should_stop = {});

}  // namespace fastopt
