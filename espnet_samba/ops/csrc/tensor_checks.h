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

}  // namespace samba
