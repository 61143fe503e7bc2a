// The threaded multi-tensor driver shared by every optimizer. ISA-independent:
// the per-element work is in optim/kernels/full_precision.cpp, reached through the active
// kernel table; the rules' scalars come from the registry (optim/registry.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "optim/step.hpp"
#include "optim/kernels.hpp"
#include "optim/quantization.hpp"
#include "optim/registry.hpp"
#include "runtime/runtime.hpp"

namespace fastopt {

namespace {

struct WorkItem {
  std::size_t tensor, begin, end;
};

std::vector<WorkItem> cut_into_blocks(const TensorBuffers* tensors, std::size_t count) {
  std::vector<WorkItem> items;
  for (std::size_t t = 0; t < count; ++t)
    for (std::size_t b = 0; b < tensors[t].n; b += kBlockElements)
      items.push_back({t, b, std::min(tensors[t].n, b + kBlockElements)});
  return items;
}

std::size_t total_elements(const TensorBuffers* tensors, std::size_t count) {
  std::size_t total = 0;
  for (std::size_t t = 0; t < count; ++t) total += tensors[t].n;
  return total;
}

// A multi-pass rule (RuleSpec::passes): every pass over all tensors' work
// items, each tensor with its own zeroed scratch. Items write only their own
// scratch slots and elements, so any thread may run any item.
void run_passes(const RuleSpec& spec, const std::vector<SpanKernel>& kernel, const TensorBuffers* tensors,
                std::size_t count, const StepCoefficients* coefficients) {
  std::vector<TensorBuffers> own(tensors, tensors + count);
  std::vector<std::size_t> offset(count + 1, 0);
  std::uint32_t groups = 0;
  for (std::size_t t = 0; t < count; ++t) {
    offset[t + 1] = offset[t] + (own[t].n > 0 ? spec.passes.scratch(own[t]) : 0);
    groups = std::max(groups, own[t].group + 1);
  }
  std::vector<double> scratch(offset[count], 0.0);
  for (std::size_t t = 0; t < count; ++t) own[t].scratch = scratch.data() + offset[t];
  std::vector<StepCoefficients> coef(coefficients, coefficients + groups);
  const std::size_t total = total_elements(tensors, count);
  std::vector<WorkItem> items;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (int pass = 0; pass < spec.passes.count; ++pass) {
    for (StepCoefficients& c : coef) c.pass = pass;
    items.clear();
    for (std::size_t t = 0; t < count; ++t) {
      if (own[t].n == 0) continue;  // nothing to update, no state to advance
      ranges.clear();
      spec.passes.items(own[t], pass, ranges);
      for (const auto& r : ranges) items.push_back({t, r.first, r.second});
    }
    const auto n_items = static_cast<std::int64_t>(items.size());
    auto one = [&](std::int64_t i) {
      const WorkItem& w = items[static_cast<std::size_t>(i)];
      kernel[w.tensor](own[w.tensor], w.begin, w.end, coef[own[w.tensor].group]);
    };
    if (total < kParallelMinElements || num_threads() == 1 || n_items < 2) {
      for (std::int64_t i = 0; i < n_items; ++i) one(i);
    } else {
      parallel_for(n_items, threads_for(total, items.size()), one);
    }
  }
}

// Each tensor's kernel for its storage layout: pick(direct dtype index, -1, q)
// for float32/float64 storage, pick(-1, mixed layout, q) for the others; with
// 8-bit state (q true) the layout is that of its float32 twin.
template <class Pick>
std::vector<SpanKernel> kernels_by_layout(const TensorBuffers* tensors, std::size_t count,
                                          const StepCoefficients* coefficients, Pick pick) {
  std::vector<SpanKernel> kernel(count);
  for (std::size_t t = 0; t < count; ++t) {
    const TensorBuffers& x = tensors[t];
    const bool has_copy = x.slot[kParamCopy] != nullptr;
    const bool quantized = x.storage.quantized();
    if (quantized) {
      const StorageProblem problem = storage_problem(x.storage, has_copy);
      if (problem.slot >= 0) throw std::invalid_argument("run_step: " + problem.reason);
    }
    const Storage s = x.storage.dequantized();
    if (s.direct(has_copy)) {
      kernel[t] = pick(static_cast<int>(s.param), -1, quantized);
    } else {
      const int layout = mixed_layout(s, has_copy, coefficients[x.group].stochastic_rounding);
      if (layout < 0) throw std::invalid_argument("run_step: " + storage_problem(x.storage, has_copy).reason);
      kernel[t] = pick(-1, layout, quantized);
    }
    if (kernel[t] == nullptr) throw std::invalid_argument("run_step: no kernel for this storage");
  }
  return kernel;
}

// One work item [begin, end) of a tensor with 8-bit state (a whole number of
// quantization blocks from `begin`), chunk by chunk: each state's blocks
// dequantized to float32 on the stack, the rule's float32-state loop over the
// chunk, each block requantized with its new absmax. One pass over memory; the
// blocks are the same whatever the threads, so the result is too.
void run_8bit(const OptimKernels& k, SpanKernel kernel, const RuleSpec& spec, const TensorBuffers& t,
              std::size_t begin, std::size_t end, const StepCoefficients& c) {
  constexpr std::size_t kChunk = 4 * kQuantBlock;
  constexpr int kStates = kStateEnd - kFirstState;
  alignas(64) float state[kStates][kChunk];
  const std::size_t param_size = dtype_size(t.storage.param), grad_size = dtype_size(t.storage.grad);
  const std::size_t copy_size = dtype_size(t.storage.copy);
  for (std::size_t c0 = begin; c0 < end; c0 += kChunk) {
    const std::size_t len = std::min(kChunk, end - c0);
    TensorBuffers v = t;
    v.storage = t.storage.dequantized();
    v.n = len;
    v.offset = t.offset + c0;
    v.slot[kParam] = static_cast<char*>(t.slot[kParam]) + c0 * param_size;
    v.slot[kGrad] = static_cast<char*>(t.slot[kGrad]) + c0 * grad_size;
    if (t.slot[kParamCopy] != nullptr) v.slot[kParamCopy] = static_cast<char*>(t.slot[kParamCopy]) + c0 * copy_size;
    for (int i = 0; i < kStates; ++i) {
      v.absmax[i] = nullptr;
      if (t.slot[kFirstState + i] == nullptr) continue;
      const QuantTable& map = quant_table(spec.states[static_cast<std::size_t>(i)].quant);
      const std::uint8_t* codes = static_cast<const std::uint8_t*>(t.slot[kFirstState + i]) + c0;
      for (std::size_t b = 0; b < len; b += kQuantBlock)
        k.dequantize[map.is_signed ? 1 : 0](codes + b, t.absmax[i][(c0 + b) / kQuantBlock], state[i] + b,
                                            std::min(kQuantBlock, len - b), map);
      v.slot[kFirstState + i] = state[i];
    }
    kernel(v, 0, len, c);
    for (int i = 0; i < kStates; ++i) {
      if (t.slot[kFirstState + i] == nullptr) continue;
      const QuantTable& map = quant_table(spec.states[static_cast<std::size_t>(i)].quant);
      std::uint8_t* codes = static_cast<std::uint8_t*>(t.slot[kFirstState + i]) + c0;
      for (std::size_t b = 0; b < len; b += kQuantBlock)
        t.absmax[i][(c0 + b) / kQuantBlock] =
            k.quantize[map.is_signed ? 1 : 0](state[i] + b, codes + b, std::min(kQuantBlock, len - b), map);
    }
  }
}

// std::invalid_argument unless every tensor with 8-bit state is one `spec`
// can step: a rule that stores 8 bits, each state with its absmax.
void require_8bit_state(const RuleSpec& spec, const TensorBuffers* tensors, std::size_t count) {
  for (std::size_t t = 0; t < count; ++t) {
    if (!tensors[t].storage.quantized()) continue;
    if (!spec.stores_8bit())
      throw std::invalid_argument(std::string("run_step: ") + spec.name + " keeps no state that 8 bits can hold");
    for (int i = 0; i < kStateEnd - kFirstState; ++i)
      if (tensors[t].slot[kFirstState + i] != nullptr && tensors[t].absmax[i] == nullptr)
        throw std::invalid_argument(std::string("run_step: an 8-bit '") + spec.states[static_cast<std::size_t>(i)].name +
                                    "' state has no absmax");
  }
}

// Every tensor's kernel over its fixed blocks (kBlockElements), on the calling
// thread or a team: the same blocks either way, so the result does not depend
// on it. `spec`: the rule, for tensors with 8-bit state (null for the probe).
void run_blocks(const std::vector<SpanKernel>& kernel, const TensorBuffers* tensors, std::size_t count,
                const std::vector<const StepCoefficients*>& coef, const RuleSpec* spec = nullptr) {
  const OptimKernels& k = active_optim_kernels();
  auto one = [&](std::size_t t, std::size_t b, std::size_t e) {
    if (spec != nullptr && tensors[t].storage.quantized()) {
      run_8bit(k, kernel[t], *spec, tensors[t], b, e, *coef[t]);
    } else {
      kernel[t](tensors[t], b, e, *coef[t]);
    }
  };
  const std::size_t total = total_elements(tensors, count);
  if (total < kParallelMinElements || num_threads() == 1) {
    for (std::size_t t = 0; t < count; ++t)
      for (std::size_t b = 0; b < tensors[t].n; b += kBlockElements) one(t, b, std::min(tensors[t].n, b + kBlockElements));
    return;
  }
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  const int threads = threads_for(total, items.size());
  const auto n_items = static_cast<std::int64_t>(items.size());
  parallel_for(n_items, threads, [&](std::int64_t i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    one(w.tensor, w.begin, w.end);
  });
}

}  // namespace

void run_step(Rule rule, const TensorBuffers* tensors, std::size_t count, const StepCoefficients* coefficients) {
  const OptimKernels& k = active_optim_kernels();
  const auto r = static_cast<int>(rule);
  const std::vector<SpanKernel> kernel = kernels_by_layout(
      tensors, count, coefficients,
      [&](int direct, int layout, bool) { return direct >= 0 ? k.span[direct][r] : k.mixed[layout][r]; });
  const RuleSpec* spec = &rule_spec(rule);
  require_8bit_state(*spec, tensors, count);
  if (spec->is_multi_pass()) {
    run_passes(*spec, kernel, tensors, count, coefficients);
    return;
  }
  // A rule with per-tensor state gives each tensor its own coefficients, made
  // (and its scalars advanced) here, before any update; the scalars are written
  // once every tensor's were accepted.
  std::vector<const StepCoefficients*> coef(count);
  std::vector<StepCoefficients> own;
  const auto per_tensor = spec->per_tensor;
  if (per_tensor != nullptr) {
    for (std::size_t t = 0; t < count; ++t)
      for (std::size_t i = 0; i < spec->states.size(); ++i)
        if (spec->is_scalar(i) && tensors[t].scalar[spec->scalar_index(i)] == nullptr)
          throw std::invalid_argument(std::string("run_step: a tensor has no '") + spec->states[i].name + "' state");
    own.reserve(count);
    std::vector<TensorScalars> scalars;
    scalars.reserve(count);
    for (std::size_t t = 0; t < count; ++t) {
      own.push_back(coefficients[tensors[t].group]);
      scalars.emplace_back(tensors[t]);
      per_tensor(own.back(), scalars.back());
    }
    for (std::size_t t = 0; t < count; ++t) scalars[t].store(tensors[t]);
  }
  for (std::size_t t = 0; t < count; ++t) coef[t] = own.empty() ? &coefficients[tensors[t].group] : &own[t];
  run_blocks(kernel, tensors, count, coef, spec);
}

void run_stream_probe(const TensorBuffers* tensors, std::size_t count) {
  // The probe's loop reads its state buffers from kFirstState upwards: the given ones, packed.
  std::vector<TensorBuffers> packed(tensors, tensors + count);
  for (TensorBuffers& t : packed) {
    int out = kFirstState;
    for (int s = kFirstState; s < kStateEnd; ++s)
      if (t.slot[s] != nullptr) t.absmax[out - kFirstState] = t.absmax[s - kFirstState], t.slot[out++] = t.slot[s];
    for (; out < kStateEnd; ++out) t.slot[out] = nullptr, t.absmax[out - kFirstState] = nullptr;
    t.group = 0;
    for (int i = 0; i < kStateEnd - kFirstState; ++i)
      if (t.storage.quantized() && t.slot[kFirstState + i] != nullptr && t.absmax[i] == nullptr)
        throw std::invalid_argument("run_stream_probe: an 8-bit state has no absmax");
  }
  const StepCoefficients none;
  const OptimKernels& k = active_optim_kernels();
  const std::vector<SpanKernel> kernel = kernels_by_layout(
      packed.data(), count, &none, [&](int direct, int layout, bool quantized) {
        if (quantized) return direct >= 0 ? k.probe_8bit : k.probe_8bit_mixed[layout];
        return direct >= 0 ? k.probe[direct] : k.probe_mixed[layout];
      });
  run_blocks(kernel, packed.data(), count, std::vector<const StepCoefficients*>(count, &none));
}

bool run_phased_step(Rule rule, const TensorBuffers* tensors, std::size_t count,
                     std::vector<StepCoefficients> coefficients, bool skip_if_nonfinite, GradientPhase* phase) {
  const bool needs_norm = phase != nullptr && (phase->max_norm > 0.0 || skip_if_nonfinite);
  if (needs_norm) {
    phase->norm = std::sqrt(gradient_sum_squares(tensors, count)) * std::fabs(phase->grad_scale);
    phase->computed_norm = true;
    if (skip_if_nonfinite && !std::isfinite(phase->norm)) return false;
  } else if (skip_if_nonfinite && !all_finite(tensors, count, kGrad)) {
    return false;
  }
  if (phase != nullptr) {
    double multiplier = phase->grad_scale;
    if (phase->max_norm > 0.0) multiplier *= std::min(1.0, phase->max_norm / (phase->norm + 1e-6));
    for (StepCoefficients& c : coefficients) c.grad_sign *= multiplier;
  }
  run_step(rule, tensors, count, coefficients.data());
  return true;
}

namespace {
template <class T>
T read_count(const StepCount& c) noexcept {
  T value;
  std::memcpy(&value, c.data, sizeof value);  // a tensor's storage need not be aligned for T
  return value;
}
template <class T>
void write_count(const StepCount& c, T value) noexcept {
  std::memcpy(c.data, &value, sizeof value);
}
constexpr double kFloatCountLimit = 9007199254740992.0;  // 2^53
}  // namespace

double count_value(const StepCount& c) noexcept {
  switch (c.type) {
    case CountType::float32: return read_count<float>(c);
    case CountType::float64: return read_count<double>(c);
    case CountType::int32: return read_count<std::int32_t>(c);
    default: return static_cast<double>(read_count<std::int64_t>(c));
  }
}

std::int64_t steps_taken(const StepCount& c) noexcept {
  switch (c.type) {
    case CountType::float32:
    case CountType::float64: {
      const double v = count_value(c);
      return v >= 0.0 && v < kFloatCountLimit && v == std::floor(v) ? static_cast<std::int64_t>(v) : -1;
    }
    case CountType::int32: {
      const std::int32_t v = read_count<std::int32_t>(c);
      return v >= 0 && v < std::numeric_limits<std::int32_t>::max() ? v : -1;
    }
    default: {
      const std::int64_t v = read_count<std::int64_t>(c);
      return v >= 0 && v < std::numeric_limits<std::int64_t>::max() - 1 ? v : -1;
    }
  }
}

bool run_counted_step(Rule rule, const TensorBuffers* tensors, std::size_t count,
                      std::vector<StepCoefficients> coefficients, const std::vector<StepCount>& counts,
                      bool skip_if_nonfinite, GradientPhase* phase) {
  for (const StepCount& c : counts)  // callers check with names first; an increment must stay exact
    if (steps_taken(c) < 0) throw std::invalid_argument("a step count is not a whole number in range");
  if (!run_phased_step(rule, tensors, count, std::move(coefficients), skip_if_nonfinite, phase)) return false;
  for (const StepCount& c : counts) {
    // In the count's own arithmetic, as torch's step_t += 1. A count listed twice (two
    // parameters sharing one step tensor) is incremented twice and may pass its limit:
    // the integers wrap (no overflow), and the next step refuses the count by name.
    switch (c.type) {
      case CountType::float32: write_count(c, read_count<float>(c) + 1.0f); break;
      case CountType::float64: write_count(c, read_count<double>(c) + 1.0); break;
      case CountType::int32:
        write_count(c, static_cast<std::int32_t>(static_cast<std::uint32_t>(read_count<std::int32_t>(c)) + 1u));
        break;
      default:
        write_count(c, static_cast<std::int64_t>(static_cast<std::uint64_t>(read_count<std::int64_t>(c)) + 1u));
        break;
    }
  }
  return true;
}

bool all_finite(const TensorBuffers* tensors, std::size_t count, int slot) {
  const OptimKernels& kernels = active_optim_kernels();
  auto dtype_of = [slot](const TensorBuffers& t) { return slot == kGrad ? t.storage.grad : t.storage.param; };
  auto finite = [&](const TensorBuffers& t, std::size_t begin, std::size_t end) {
    const DType dtype = dtype_of(t);
    const char* base = static_cast<const char*>(t.slot[slot]);
    return kernels.all_finite[static_cast<int>(dtype)](base + begin * dtype_size(dtype), end - begin);
  };
  const std::size_t total = total_elements(tensors, count);
  if (total < kParallelMinElements || num_threads() == 1) {
    for (std::size_t t = 0; t < count; ++t)
      if (!finite(tensors[t], 0, tensors[t].n)) return false;
    return true;
  }
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  const int threads = threads_for(total, items.size());
  const auto n_items = static_cast<std::int64_t>(items.size());
  int all = 1;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(&& : all)
  for (std::int64_t i = 0; i < n_items; ++i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    all = all && finite(tensors[w.tensor], w.begin, w.end);
  }
  return all != 0;
}

double gradient_sum_squares(const TensorBuffers* tensors, std::size_t count) {
  const OptimKernels& kernels = active_optim_kernels();
  auto block_sum = [&](const TensorBuffers& t, std::size_t begin, std::size_t end) {
    const DType dtype = t.storage.grad;
    const char* base = static_cast<const char*>(t.slot[kGrad]);
    return kernels.sum_squares[static_cast<int>(dtype)](base + begin * dtype_size(dtype), end - begin);
  };
  // One partial per block, combined in block order: the same sum for any thread count.
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  std::vector<double> partial(items.size());
  const std::size_t total = total_elements(tensors, count);
  const auto n_items = static_cast<std::int64_t>(items.size());
  auto one = [&](std::int64_t i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    partial[static_cast<std::size_t>(i)] = block_sum(tensors[w.tensor], w.begin, w.end);
  };
  if (total < kParallelMinElements || num_threads() == 1) {
    for (std::int64_t i = 0; i < n_items; ++i) one(i);
  } else {
    parallel_for(n_items, threads_for(total, items.size()), one);
  }
  double sum = 0.0;
  for (double x : partial) sum += x;
  return sum;
}

}  // namespace fastopt
