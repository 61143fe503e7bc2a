// Conversion of a rule's name and hyperparameters from Python, shared by the
// optimizer and training-loop bindings. What is valid is the registry's
// business (optim.hpp); this only converts, naming the argument on error.
#pragma once

#include <pybind11/pybind11.h>

#include <array>

#include "arrays.hpp"
#include "optim/registry.hpp"

namespace fastopt::bindings {

// The rule called `name` (a str), else TypeError / ValueError listing the rules.
const RuleSpec& check_rule(py::handle name);

// The rule's hyperparameters from a dict {name: value}, in registry order:
// flags must be bools, the rest real numbers; a missing one takes its default;
// an unknown key is a ValueError. Ranges are checked by checked_coefficients.
std::array<double, kMaxHypers> hyper_values(const RuleSpec& spec, py::handle hypers);

// Rounding of float16/bfloat16 parameters: None (to nearest even) or the seed
// (an int in [0, 2**64)) of stochastic rounding.
void set_rounding(StepCoefficients& c, py::handle seed);

// The registry as Python data, for the Python API to derive from.
py::list describe_rules();

}  // namespace fastopt::bindings
