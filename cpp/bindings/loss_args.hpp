// Argument checking of the loss bindings, shared with the training loop's
// binding: arrays X, W, y and the loss hyperparameters. Errors name the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>

#include "arrays.hpp"
#include "loss/loss.hpp"

namespace fastopt::bindings {

// A float32/float64 array with `ndim` dimensions (any when 0), made
// C-contiguous and aligned (copied once if it is not: the kernels stream rows
// and load elements of their type).
py::array float_array(py::handle obj, const char* name, int ndim, DType* dtype);
// TypeError naming both arrays unless a == b.
void require_same_dtype(DType a, const char* a_name, DType b, const char* b_name);

// Integer labels in [0, C), one per row: `values` is a private int64 copy
// (the kernels index with it, so nobody else may write it); `source` is the
// memory of the array they were read from, for overlap checks against
// arrays a loop writes, kept alive by `source_object`.
struct Labels {
  py::array_t<std::int64_t> values;
  py::object source_object;
  ByteRange source{nullptr, nullptr, ArgName("y")};
};
Labels labels(py::handle obj, std::size_t N, std::size_t C);

double check_reg(py::handle obj);
double check_delta(py::handle obj);
PenaltyKind check_penalty(py::handle kind, const char* name);
double check_l1_ratio(py::handle obj);

// The checked inputs of a linear-classifier loss against W (D × C, already checked).
struct LinearArgs {
  py::array X;
  Labels y;
  std::size_t N, D, C;
  double reg;
  PenaltyKind penalty;
  double l1_ratio;
  py::array_t<double> sample_weight;  // a private float64 copy, or empty (all 1)
  LossWeights weights;                // points into sample_weight
  bool intercept = false;             // W's last row is the intercept (W has D + 1 rows)
};
// `sample_weight`: None or N finite weights >= 0 with a positive sum (any real
// dtype); `unpenalized_rows`: the number of trailing rows of W (the bias row)
// the penalty leaves out, in [0, rows of W]; `intercept`: a bool, W has D + 1
// rows when true.
LinearArgs check_linear_args(const py::array& W, DType w_dtype, py::handle X, py::handle y, py::handle reg,
                             py::handle penalty, py::handle l1_ratio, py::handle sample_weight,
                             py::handle unpenalized_rows, py::handle intercept);

}  // namespace fastopt::bindings
