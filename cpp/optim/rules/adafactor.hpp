// Adafactor (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with
// Sublinear Memory Cost"), as torch.optim.Adafactor (t = step number from 1):
//   w = t^beta2_decay  (= 1 - β̂2_t);  ρ = min(lr, 1/√t)
//   α = max(eps2, RMS(p)) · ρ                      (p before this step's decay)
//   p *= 1 - lr·wd
//   p of ≥ 2 dims (..., m, n), per matrix:
//     R = lerp(R, mean_j g², w)   (m, 1);   C = lerp(C, mean_i g², w)   (1, n)
//     V = R·C / max(mean_i R, eps1)
//   p of < 2 dims:  V = lerp(V, g², w)
//   U = g / √max(V, eps1²);   p -= α / max(1, RMS(U) / d) · U
// eps1 = None: the parameter dtype's machine epsilon. lerp is torch's.
// State: row_var, col_var (factored, ≥ 2-D parameters); variance (< 2-D).
//
// RMS(p) and RMS(U) are whole-tensor reductions and R, C means over rows and
// columns, so the step runs in passes (RuleSpec::passes), each over row blocks
// of the matrices (chunks of kBlockElements for vectors):
//   0  Σg² per row and per block of each column, Σp² per row   (vectors: Σp², ΣU²)
//   1  per tensor: R, C, the clamped mean of R per matrix, α    (vectors: α and U's scale)
//   2  ΣU² per row                                              (vectors: nothing)
//   3  per tensor: U's scale -α / max(1, RMS(U) / d)            (vectors: nothing)
//   4  the update of p                                          (vectors: and of V)
// Every sum is in double and in a fixed order — a row's as sum_squares (eight
// running sums), rows and blocks added in order — so the result is bitwise the
// same for any thread count and ISA (fastopt.reference.optim.adafactor gives
// the order in NumPy).
#pragma once

#include <cstddef>

#include "optim/registry.hpp"
#include "optim/step.hpp"  // kBlockElements

namespace fastopt::rules::adafactor {

// The scalars of a step that are adafactor's own (StepCoefficients::scalars).
struct Scalars {
  double eps1 = 0.0;  // NaN: the parameter dtype's machine epsilon
  double eps2 = 0.0;
  double clip_threshold = 1.0;  // d
  double beta2_weight = 1.0;  // 1 - β̂2_t = t^beta2_decay
  double relative_step = 0.0;  // ρ_t = min(lr, 1/√t)
};

// A tensor's work items and the layout of its scratch (doubles), for both halves.
struct Plan {
  static constexpr std::size_t kRowBlock = 64;  // rows of a matrix per work item
  bool factored;
  std::size_t rows, blocks, chunks;  // matrices: all their rows and row blocks; vectors: chunks
  explicit Plan(const TensorBuffers& t)
      : factored(t.slices > 0),
        rows(t.slices * t.rows),
        blocks(t.slices * ((t.rows + kRowBlock - 1) / kRowBlock)),
        chunks(factored ? 0 : (t.n + kBlockElements - 1) / kBlockElements) {}
  // Matrices: Σg², Σp², ΣU² per row; the column sums of each row block; the
  // clamped mean of R per matrix; R and C as computed (before a 16-bit state
  // rounds them: the step uses the unrounded values, as every rule does).
  // Vectors: Σp², ΣU² per chunk. Then α and U's scale.
  std::size_t grad_sq() const { return 0; }
  std::size_t param_sq() const { return factored ? rows : 0; }
  std::size_t update_sq() const { return factored ? 2 * rows : chunks; }
  std::size_t col_sums() const { return 3 * rows; }
  std::size_t row_means(const TensorBuffers& t) const { return col_sums() + blocks * t.cols; }
  std::size_t row_values(const TensorBuffers& t) const { return row_means(t) + t.slices; }
  std::size_t col_values(const TensorBuffers& t) const { return row_values(t) + rows; }
  std::size_t alpha(const TensorBuffers& t) const {
    return factored ? col_values(t) + t.slices * t.cols : 2 * chunks;
  }
  std::size_t scale(const TensorBuffers& t) const { return alpha(t) + 1; }
  std::size_t size(const TensorBuffers& t) const { return scale(t) + 1; }
};

}  // namespace fastopt::rules::adafactor

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <algorithm>
#include <cmath>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::adafactor {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  require_step(step);
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.eps1 = r.value(h, "eps1");
  s.eps2 = r.value(h, "eps2");
  s.clip_threshold = r.value(h, "d");
  if (!(s.clip_threshold >= 1.0))
    throw std::invalid_argument("d must be >= 1, got " + std::to_string(s.clip_threshold));
  c.param_decay = 1.0 - c.lr * r.value(h, "weight_decay");
  const double t = static_cast<double>(step);
  s.beta2_weight = std::pow(t, r.value(h, "beta2_decay"));
  s.relative_step = std::min(c.lr, 1.0 / std::pow(t, 0.5));
  return c;
}

inline std::size_t scratch_size(const TensorBuffers& t) { return Plan(t).size(t); }

inline void items(const TensorBuffers& t, int pass, std::vector<std::pair<std::size_t, std::size_t>>& out) {
  const bool factored = t.slices > 0;
  if (pass == 1 || (pass == 3 && factored)) {
    out.push_back({0, 0});  // a per-tensor step
  } else if (factored && (pass == 0 || pass == 2 || pass == 4)) {
    for (std::size_t s = 0; s < t.slices; ++s)
      for (std::size_t r = 0; r < t.rows; r += Plan::kRowBlock)
        out.push_back({s * t.rows + r, s * t.rows + std::min(t.rows, r + Plan::kRowBlock)});
  } else if (!factored && (pass == 0 || pass == 4)) {
    for (std::size_t b = 0; b < t.n; b += kBlockElements) out.push_back({b, std::min(t.n, b + kBlockElements)});
  }
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Adafactor (Shazeer & Stern 2018)

Update rule (``step`` = t counts from 1; RMS(x) = ||x|| / sqrt(x.size))::

    w = t ** beta2_decay;  rho = min(lr, 1 / sqrt(t))
    alpha = max(eps2, RMS(p)) * rho
    p *= 1 - lr * weight_decay
    p of 2 or more dims (..., m, n), per matrix:
        row_var = lerp(row_var, mean(g * g, axis=-1), w)
        col_var = lerp(col_var, mean(g * g, axis=-2), w)
        V = row_var * col_var / max(mean(row_var, axis=-2), eps1)
    p of fewer dims:
        variance = lerp(variance, g * g, w);  V = variance
    U = g / sqrt(max(V, eps1**2))
    p -= alpha / max(1, RMS(U) / d) * U

The second moment of a matrix is factored into a row and a column vector, so
the state is sublinear in its size. The norms and means are whole-tensor sums
in double, in a fixed order: the result is bitwise the same for any thread
count and instruction set. ``eps1=None`` is each parameter's dtype's machine
epsilon (torch.optim.Adafactor takes the first parameter's for its group).)";

inline RuleSpec spec() {
  RuleSpec r{Rule::adafactor, "adafactor", true,
             {{"lr", 1e-2, kNonneg, true, "the largest relative step size, and the weight decay's factor"},
              {"beta2_decay", -0.8, Range::nonpositive, true, "the second moment's decay exponent"},
              {"eps1", std::nan(""), Range::optional_nonnegative, true,
                "floor of the second moment (squared) and of the row mean; None: the parameter dtype's machine "
                "epsilon"},
              {"eps2", 1e-3, kNonneg, true, "floor of RMS(p) in the step size"},
              {"d", 1.0, kPositive, true, "clipping threshold of RMS(U)"},
              {"weight_decay", 0.0, kNonneg, true, "decoupled weight decay"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"row_var", "row_var", nullptr, nullptr, StateShape::row},
              {"col_var", "col_var", nullptr, nullptr, StateShape::col},
              {"variance", "variance", nullptr, nullptr, StateShape::unfactored}},
             coefficients, nullptr, {5, scratch_size, items}};
  r.doc = kDoc;
  r.api = "torch.optim.Adafactor(lr, beta2_decay, eps=(eps1, eps2), d, weight_decay, *, foreach=None, maximize)";
  return r;
}

}  // namespace fastopt::rules::adafactor

#else  // ----------------------------------------------------- the update loop, per ISA

#include <cfloat>

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class P>
constexpr double machine_epsilon() {
  if constexpr (std::is_same_v<P, double>) return DBL_EPSILON;
  else if constexpr (std::is_same_v<P, float>) return FLT_EPSILON;
  else if constexpr (std::is_same_v<P, bfloat16_t>) return 0.0078125;  // 2^-7
  else return 0.0009765625;                                             // float16: 2^-10
}

// torch's lerp: a + w·(b - a), or b - (b - a)·(1 - w) for |w| >= 1/2.
template <class T>
FASTOPT_INLINE T lerp(T a, T b, T w) {
  return std::abs(w) < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

FASTOPT_INLINE double combine8(const double* a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

template <class L>
struct AdafactorStep {
  using T = typename L::opmath;
  using S = typename L::state;
  using P = typename L::param;
  using G = typename L::grad;
  const TensorBuffers& t;
  const StepCoefficients& c;
  const rules::adafactor::Scalars& own;  // this rule's scalars
  const rules::adafactor::Plan plan;
  P* const p;
  const G* const g;
  double* const scratch;
  const T grad_sign, eps1, eps1_squared;

  AdafactorStep(const TensorBuffers& t_, const StepCoefficients& c_)
      : t(t_), c(c_), own(c_.scalars<rules::adafactor::Scalars>()), plan(t_), p(static_cast<P*>(t_.slot[kParam])),
        g(static_cast<const G*>(t_.slot[kGrad])), scratch(t_.scratch), grad_sign(T(c_.grad_sign)),
        eps1(T(epsilon1())), eps1_squared(T(epsilon1() * epsilon1())) {}

  double epsilon1() const { return std::isnan(own.eps1) ? machine_epsilon<P>() : own.eps1; }
  S* state(int i) const { return static_cast<S*>(t.slot[kFirstState + i]); }

  // U = g / √max(V, eps1²), as torch: V clamped, rsqrt, times g.
  FASTOPT_INLINE T update(T grad, T v) const { return (T(1) / std::sqrt(std::max(v, eps1_squared))) * grad; }

  // Pass 0, rows [begin, end) of one matrix's row block.
  void reduce_rows(size_t begin, size_t end) const {
    const size_t cols = t.cols;
    const size_t block = (begin / t.rows) * ((t.rows + plan.kRowBlock - 1) / plan.kRowBlock) +
                         (begin % t.rows) / plan.kRowBlock;
    double* __restrict col = scratch + plan.col_sums() + block * cols;
    for (size_t r = begin; r < end; ++r) {
      const G* __restrict gr = g + r * cols;
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      size_t j = 0;
      for (; j + 8 <= cols; j += 8)
        for (size_t k = 0; k < 8; ++k) {
          const double x = double(grad_sign * load(gr[j + k]));
          acc[k] += x * x;
          col[j + k] += x * x;
        }
      for (size_t k = 0; j + k < cols; ++k) {
        const double x = double(grad_sign * load(gr[j + k]));
        acc[k] += x * x;
        col[j + k] += x * x;
      }
      scratch[plan.grad_sq() + r] = combine8(acc);
      scratch[plan.param_sq() + r] = sum_squares<P>(p + r * cols, cols);
    }
  }

  // Pass 1: R, C, the clamped mean of R per matrix; α.
  void factors() const {
    S* row = state(0);
    S* col = state(1);
    const T w = T(own.beta2_weight);
    const size_t rows = t.rows, cols = t.cols, blocks = (rows + plan.kRowBlock - 1) / plan.kRowBlock;
    double* row_value = scratch + plan.row_values(t);
    double* col_value = scratch + plan.col_values(t);
    for (size_t r = 0; r < plan.rows; ++r) {
      const T x = lerp(T(load(row[r])), T(scratch[plan.grad_sq() + r] / double(cols)), w);
      store(row + r, x);
      row_value[r] = double(x);
    }
    for (size_t s = 0; s < t.slices; ++s) {
      const double* sums = scratch + plan.col_sums() + s * blocks * cols;
      for (size_t j = 0; j < cols; ++j) {
        double sum = 0.0;
        for (size_t b = 0; b < blocks; ++b) sum += sums[b * cols + j];
        const T x = lerp(T(load(col[s * cols + j])), T(sum / double(rows)), w);
        store(col + s * cols + j, x);
        col_value[s * cols + j] = double(x);
      }
      double mean = 0.0;
      for (size_t r = 0; r < rows; ++r) mean += row_value[s * rows + r];
      scratch[plan.row_means(t) + s] = double(std::max(T(mean / double(rows)), eps1));
    }
    double sum = 0.0;
    for (size_t r = 0; r < plan.rows; ++r) sum += scratch[plan.param_sq() + r];
    scratch[plan.alpha(t)] = alpha(sum);
  }

  double alpha(double param_sum_squares) const {
    return std::max(own.eps2, std::sqrt(param_sum_squares) / std::pow(double(t.n), 0.5)) * own.relative_step;
  }
  double scale(double update_sum_squares) const {
    const double denom =
        std::max(1.0, std::sqrt(update_sum_squares) / (std::pow(double(t.n), 0.5) * own.clip_threshold));
    return -scratch[plan.alpha(t)] / denom;
  }

  // Passes 2 and 4 on rows [begin, end): ΣU² per row, or the update of p.
  template <bool kApply>
  void factored_rows(size_t begin, size_t end) const {
    const size_t cols = t.cols;
    const T decay = T(c.param_decay), step = T(scratch[plan.scale(t)]);
    for (size_t r = begin; r < end; ++r) {
      const size_t s = r / t.rows;
      const T rv = T(scratch[plan.row_values(t) + r]), mean = T(scratch[plan.row_means(t) + s]);
      const double* __restrict cv = scratch + plan.col_values(t) + s * cols;
      const G* __restrict gr = g + r * cols;
      P* __restrict pr = p + r * cols;
      if constexpr (kApply) {
        const ParamStore<L> store_param(t, r * cols, c);
        for (size_t j = 0; j < cols; ++j) {
          const T u = update(grad_sign * load(gr[j]), (rv * T(cv[j])) / mean);
          store_param(pr, j, load(pr[j]) * decay + step * u);
        }
      } else {
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t j = 0;
        for (; j + 8 <= cols; j += 8)
          for (size_t k = 0; k < 8; ++k) {
            const double u = double(update(grad_sign * load(gr[j + k]), (rv * T(cv[j + k])) / mean));
            acc[k] += u * u;
          }
        for (size_t k = 0; j + k < cols; ++k) {
          const double u = double(update(grad_sign * load(gr[j + k]), (rv * T(cv[j + k])) / mean));
          acc[k] += u * u;
        }
        scratch[plan.update_sq() + r] = combine8(acc);
      }
    }
  }

  // Pass 0 of a vector: Σp² and ΣU² of one chunk, with V as pass 4 computes
  // and stores it (one store of V, and the step sees it unrounded, as every rule).
  void reduce_chunk(size_t begin, size_t end) const {
    const S* __restrict v = state(2);
    const T w = T(own.beta2_weight);
    double ps[8] = {0, 0, 0, 0, 0, 0, 0, 0}, us[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = begin; i < end; ++i) {
      const double x = double(load(p[i]));
      ps[(i - begin) % 8] += x * x;
      const T grad = grad_sign * load(g[i]);
      const double u = double(update(grad, lerp(T(load(v[i])), grad * grad, w)));
      us[(i - begin) % 8] += u * u;
    }
    const size_t chunk = begin / kBlockElements;
    scratch[plan.param_sq() + chunk] = combine8(ps);
    scratch[plan.update_sq() + chunk] = combine8(us);
  }

  void vector_scalars() const {
    double param_sum = 0.0, update_sum = 0.0;
    for (size_t k = 0; k < plan.chunks; ++k) {
      param_sum += scratch[plan.param_sq() + k];
      update_sum += scratch[plan.update_sq() + k];
    }
    scratch[plan.alpha(t)] = alpha(param_sum);
    scratch[plan.scale(t)] = scale(update_sum);
  }

  void apply_chunk(size_t begin, size_t end) const {
    S* __restrict v = state(2) + begin;
    const G* __restrict gc = g + begin;
    const T w = T(own.beta2_weight), decay = T(c.param_decay), step = T(scratch[plan.scale(t)]);
    const ParamStore<L> store_param(t, begin, c);
    P* __restrict pc = p + begin;
    for (size_t i = 0; i < end - begin; ++i) {
      const T grad = grad_sign * load(gc[i]);
      const T vi = lerp(T(load(v[i])), grad * grad, w);
      store(v + i, vi);
      store_param(pc, i, load(pc[i]) * decay + step * update(grad, vi));
    }
  }

  void update_scale() const {
    double sum = 0.0;
    for (size_t r = 0; r < plan.rows; ++r) sum += scratch[plan.update_sq() + r];
    scratch[plan.scale(t)] = scale(sum);
  }
};

template <class L>
void adafactor_step(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const AdafactorStep<L> a(t, c);
  if (t.slices > 0) {
    switch (c.pass) {
      case 0: a.reduce_rows(begin, end); break;
      case 1: a.factors(); break;
      case 2: a.template factored_rows<false>(begin, end); break;
      case 3: a.update_scale(); break;
      default: a.template factored_rows<true>(begin, end); break;
    }
  } else {
    switch (c.pass) {
      case 0: a.reduce_chunk(begin, end); break;
      case 1: a.vector_scalars(); break;
      case 4: a.apply_chunk(begin, end); break;
      default: break;
    }
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
