// Argument checks the CPU kernels share.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace samba {

// An absent tensor passes; a present one must have `shape` and `dtype` and be contiguous.
inline void check_dense(const std::optional<at::Tensor>& tensor, const char* name, at::IntArrayRef shape,
                        at::ScalarType dtype) {
  if (!tensor.has_value()) return;
  TORCH_CHECK(tensor->sizes() == shape, name, " must be ", shape, ", got ", tensor->sizes());
  TORCH_CHECK(tensor->scalar_type() == dtype, name, " must be ", dtype, ", got ", tensor->scalar_type());
  TORCH_CHECK(tensor->is_contiguous(), name, " must be contiguous");
}

// The same for a (rows, n) input that may be a view into wider rows: unit stride along n, any row stride.
inline void check_rows(const std::optional<at::Tensor>& tensor, const char* name, at::IntArrayRef shape,
                       at::ScalarType dtype) {
  if (!tensor.has_value()) return;
  TORCH_CHECK(tensor->sizes() == shape, name, " must be ", shape, ", got ", tensor->sizes());
  TORCH_CHECK(tensor->scalar_type() == dtype, name, " must be ", dtype, ", got ", tensor->scalar_type());
  TORCH_CHECK(tensor->dim() == 2 && (tensor->size(1) <= 1 || tensor->stride(1) == 1), name,
              " must have unit stride along its last dimension, got strides ", tensor->strides());
}

// The data of an optional tensor, or null when it is absent.
template <typename T>
const T* pointer_of(const std::optional<at::Tensor>& tensor) {
  return tensor.has_value() ? tensor->data_ptr<T>() : nullptr;
}

}  // namespace samba
