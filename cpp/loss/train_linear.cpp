// The native training loop of a linear classifier (loss/train_linear.hpp). ISA-independent:
// the loss and the update go through the active kernel tables.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "loss/train_linear.hpp"
#include "optim/step.hpp"

namespace fastopt {

namespace {

// a·b if it is at most `limit`, else empty (no overflow: checked by division).
std::optional<std::size_t> product_at_most(std::size_t a, std::size_t b, std::size_t limit) {
  if (a != 0 && b > limit / a) return std::nullopt;
  return a * b;
}

// The rows of one epoch (N indices) or of one iteration (batch_size indices).
void draw_rows(Sampling sampling, std::size_t N, std::size_t batch_size, SplitMix64& rng, std::int64_t* rows) {
  if (sampling == Sampling::epochs) {
    std::iota(rows, rows + N, std::int64_t(0));
    for (std::size_t i = N; i-- > 1;) std::swap(rows[i], rows[rng.below(i + 1)]);
  } else {
    for (std::size_t r = 0; r < batch_size; ++r) rows[r] = static_cast<std::int64_t>(rng.below(N));
  }
}

std::size_t rows_per_draw(Sampling sampling, std::size_t N, std::size_t batch_size) {
  return sampling == Sampling::epochs ? N : batch_size;
}

}  // namespace

std::optional<std::size_t> updates_in(Sampling sampling, std::size_t N, std::size_t batch_size, std::size_t count) {
  const std::size_t per_draw = sampling == Sampling::with_replacement ? 1 : N / batch_size + (N % batch_size != 0);
  return product_at_most(count, per_draw, kMaxUpdatesPerCall);
}

std::optional<std::size_t> indices_in(Sampling sampling, std::size_t N, std::size_t batch_size, std::size_t count) {
  return product_at_most(count, rows_per_draw(sampling, N, batch_size), kMaxIndicesPerCall);
}

void draw_minibatch_indices(Sampling sampling, std::size_t N, std::size_t batch_size, std::size_t count,
                            SplitMix64& rng, std::int64_t* idx) {
  const std::size_t per_draw = rows_per_draw(sampling, N, batch_size);
  for (std::size_t k = 0; k < count; ++k) draw_rows(sampling, N, batch_size, rng, idx + k * per_draw);
}

std::size_t train_linear(const LinearProblem& pb, Sampling sampling, std::size_t batch_size, std::size_t count,
                         SplitMix64& rng, const RuleSettings& opt, const double* lr, std::int64_t first_step,
                         TensorBuffers w, double* losses, const std::function<bool()>& should_stop) {
  const std::size_t elem = pb.dtype == DType::f32 ? sizeof(float) : sizeof(double);
  const std::size_t W_rows = pb.D + (pb.intercept ? 1 : 0);
  std::vector<double> grad((W_rows * pb.C * elem + sizeof(double) - 1) / sizeof(double));  // dW, W's dtype
  std::vector<std::int64_t> rows(rows_per_draw(sampling, pb.N, batch_size));
  w.slot[kGrad] = grad.data();
  w.group = 0;  // the one set of coefficients below
  std::size_t u = 0;
  for (std::size_t k = 0; k < count; ++k) {
    draw_rows(sampling, pb.N, batch_size, rng, rows.data());
    for (std::size_t start = 0; start < rows.size(); start += batch_size, ++u) {
      const std::size_t n = std::min(batch_size, rows.size() - start);
      losses[u] = linear_loss(pb.kind, pb.dtype, w.slot[kParam], pb.X, pb.y, n, pb.D, pb.C, pb.delta, pb.penalty,
                              pb.reg, pb.l1_ratio, grad.data(), rows.data() + start, pb.weights, pb.intercept);
      const StepCoefficients c = coefficients_at(opt, lr[u], first_step + static_cast<std::int64_t>(u));
      run_step(opt.spec->rule, &w, 1, &c);
    }
    if (should_stop && should_stop()) return k + 1;
  }
  return count;
}

}  // namespace fastopt
