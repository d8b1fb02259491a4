// Fused CPU kernels of the Mamba mixer's causal depthwise convolution (+ SiLU): forward, backward, one step.
//
// Layout: channels last. x is (batch, time, channel) with unit channel stride, as the mixer's input projection
// produces it, and the output is a contiguous (batch, time, channel) tensor that the next projection and the
// selective scan read without a transpose copy. Weights are (width, channel). A work item is one batch element
// and a tile of frames; each frame is one vectorised pass over the channels. The backward recomputes the
// pre-activation (cheaper than saving it) and sums the weight and bias gradients into per-item partials that the
// caller adds up.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "decode_step.h"
#include "tensor_checks.h"
#include "vector_math.h"

namespace samba {
namespace {

constexpr int64_t kTileFrames = 32;

template <typename T>
struct ConvProblem {
  int64_t batch, length, dim, width;
  const T* x;
  int64_t x_batch_stride, x_time_stride;
  const T* weight;  // (width, dim)
  const T* bias;    // (dim,) or null
  bool silu;

  const T* frame(int64_t b, int64_t t) const { return x + b * x_batch_stride + t * x_time_stride; }
};

// pre[d] = bias[d] + sum_k weight[k, d] * x[t - width + 1 + k, d], inputs before t = 0 being zero.
template <typename T>
inline void pre_activation(const ConvProblem<T>& p, int64_t b, int64_t t, T* pre) {
  const int64_t dim = p.dim;
  if (p.bias) {
    std::copy(p.bias, p.bias + dim, pre);
  } else {
    std::fill(pre, pre + dim, T(0));
  }
  for (int64_t k = std::max<int64_t>(0, p.width - 1 - t); k < p.width; ++k) {
    const T* input = p.frame(b, t - p.width + 1 + k);
    const T* w = p.weight + k * dim;
#pragma omp simd
    for (int64_t d = 0; d < dim; ++d) pre[d] += w[d] * input[d];
  }
}

template <typename T>
void conv_forward_kernel(const ConvProblem<T>& p, T* out) {
  const int64_t tiles = (p.length + kTileFrames - 1) / kTileFrames;
  at::parallel_for(0, p.batch * tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / tiles, t0 = (item % tiles) * kTileFrames;
      for (int64_t t = t0; t < std::min(p.length, t0 + kTileFrames); ++t) {
        T* y = out + (b * p.length + t) * p.dim;
        pre_activation(p, b, t, y);
        if (p.silu) {
#pragma omp simd
          for (int64_t d = 0; d < p.dim; ++d) y[d] *= sigmoid(y[d]);
        }
      }
    }
  });
}

template <typename T>
void conv_backward_kernel(const ConvProblem<T>& p, const T* grad_out, int64_t grad_batch_stride,
                          int64_t grad_time_stride, T* grad_x, T* grad_weight_items, T* grad_bias_items) {
  const int64_t dim = p.dim, width = p.width;
  const int64_t tiles = (p.length + kTileFrames - 1) / kTileFrames;
  at::parallel_for(0, p.batch * tiles, 1, [&](int64_t begin, int64_t end) {
    // dLoss/d(pre-activation) for the tile's frames and the width - 1 after it, which its inputs also feed.
    std::vector<T> grad_pre((kTileFrames + width - 1) * dim);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / tiles, t0 = (item % tiles) * kTileFrames;
      const int64_t t1 = std::min(p.length, t0 + kTileFrames), t_needed = std::min(p.length, t1 + width - 1);
      for (int64_t t = t0; t < t_needed; ++t) {
        T* g = grad_pre.data() + (t - t0) * dim;
        const T* upstream = grad_out + b * grad_batch_stride + t * grad_time_stride;
        if (p.silu) {
          pre_activation(p, b, t, g);
#pragma omp simd
          for (int64_t d = 0; d < dim; ++d) {
            const T s = sigmoid(g[d]);
            g[d] = upstream[d] * s * (T(1) + g[d] * (T(1) - s));
          }
        } else {
          std::copy(upstream, upstream + dim, g);
        }
      }
      T* grad_weight = grad_weight_items + item * width * dim;
      T* grad_bias = grad_bias_items ? grad_bias_items + item * dim : nullptr;
      std::fill(grad_weight, grad_weight + width * dim, T(0));
      if (grad_bias) std::fill(grad_bias, grad_bias + dim, T(0));
      for (int64_t t = t0; t < t1; ++t) {
        // x[t] feeds the outputs t + width - 1 - k through weight k.
        T* gx = grad_x + (b * p.length + t) * dim;
        std::fill(gx, gx + dim, T(0));
        for (int64_t k = 0; k < width; ++k) {
          const int64_t target = t + width - 1 - k;
          if (target >= p.length) continue;
          const T* g = grad_pre.data() + (target - t0) * dim;
          const T* w = p.weight + k * dim;
#pragma omp simd
          for (int64_t d = 0; d < dim; ++d) gx[d] += w[d] * g[d];
        }
        const T* g = grad_pre.data() + (t - t0) * dim;
        for (int64_t k = std::max<int64_t>(0, width - 1 - t); k < width; ++k) {
          const T* input = p.frame(b, t - width + 1 + k);
          T* gw = grad_weight + k * dim;
#pragma omp simd
          for (int64_t d = 0; d < dim; ++d) gw[d] += g[d] * input[d];
        }
        if (grad_bias) {
#pragma omp simd
          for (int64_t d = 0; d < dim; ++d) grad_bias[d] += g[d];
        }
      }
    }
  });
}

void check_tensor(const at::Tensor& tensor, const char* name, at::IntArrayRef shape, at::ScalarType dtype) {
  TORCH_CHECK(tensor.sizes() == shape, name, " must be ", shape, ", got ", tensor.sizes());
  TORCH_CHECK(tensor.scalar_type() == dtype, name, " must be ", dtype, ", got ", tensor.scalar_type());
  TORCH_CHECK(!tensor.is_cuda(), name, " must be a CPU tensor");
}

template <typename T>
ConvProblem<T> make_conv_problem(const at::Tensor& x, const at::Tensor& weight_t,
                                 const std::optional<at::Tensor>& bias, bool silu) {
  ConvProblem<T> p;
  p.batch = x.size(0);
  p.length = x.size(1);
  p.dim = x.size(2);
  p.width = weight_t.size(0);
  p.x = x.data_ptr<T>();
  p.x_batch_stride = x.stride(0);
  p.x_time_stride = x.stride(1);
  p.weight = weight_t.data_ptr<T>();
  p.bias = bias.has_value() ? bias->data_ptr<T>() : nullptr;
  p.silu = silu;
  return p;
}

void check_conv_inputs(const at::Tensor& x, const at::Tensor& weight_t, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() == 3, "x must be (batch, length, dim), got ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "the CPU conv kernels compute in float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.size(2) <= 1 || x.stride(2) == 1, "x must have unit stride along its channels");
  TORCH_CHECK(weight_t.dim() == 2 && weight_t.is_contiguous(), "weight_t must be a contiguous (width, dim) tensor");
  check_tensor(weight_t, "weight_t", {weight_t.size(0), x.size(2)}, x.scalar_type());
  if (bias.has_value()) {
    check_tensor(*bias, "bias", {x.size(2)}, x.scalar_type());
    TORCH_CHECK(bias->is_contiguous(), "bias must be contiguous");
  }
}

}  // namespace

at::Tensor causal_conv1d_forward(const at::Tensor& x, const at::Tensor& weight_t,
                                 const std::optional<at::Tensor>& bias, bool silu) {
  check_conv_inputs(x, weight_t, bias);
  auto out = at::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv1d_forward", [&] {
    conv_forward_kernel<scalar_t>(make_conv_problem<scalar_t>(x, weight_t, bias, silu), out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> causal_conv1d_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                               const at::Tensor& weight_t, const std::optional<at::Tensor>& bias,
                                               bool silu) {
  check_conv_inputs(x, weight_t, bias);
  check_tensor(grad_out, "grad_out", x.sizes(), x.scalar_type());
  TORCH_CHECK(x.size(2) <= 1 || grad_out.stride(2) == 1, "grad_out must have unit stride along its channels");
  const int64_t batch = x.size(0), length = x.size(1), dim = x.size(2), width = weight_t.size(0);
  const int64_t items = batch * ((length + kTileFrames - 1) / kTileFrames);
  auto grad_x = at::empty({batch, length, dim}, x.options());
  auto grad_weight_items = at::empty({items, width, dim}, x.options());
  auto grad_bias_items = at::empty({bias.has_value() ? items : 0, dim}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv1d_backward", [&] {
    conv_backward_kernel<scalar_t>(make_conv_problem<scalar_t>(x, weight_t, bias, silu),
                                   grad_out.data_ptr<scalar_t>(), grad_out.stride(0), grad_out.stride(1),
                                   grad_x.data_ptr<scalar_t>(), grad_weight_items.data_ptr<scalar_t>(),
                                   bias.has_value() ? grad_bias_items.data_ptr<scalar_t>() : nullptr);
  });
  return {grad_x, grad_weight_items.sum(0), grad_bias_items.sum(0)};
}

at::Tensor causal_conv1d_update(const at::Tensor& x, const at::Tensor& conv_state, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, bool silu) {
  TORCH_CHECK(conv_state.dim() == 3 && conv_state.is_contiguous(),
              "conv_state must be a contiguous (batch, dim, width) tensor");
  const int64_t batch = conv_state.size(0), dim = conv_state.size(1), width = conv_state.size(2);
  const auto dtype = conv_state.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "conv_state must be float32 or float64, got ", dtype);
  check_rows(x, "x", {batch, dim}, dtype);
  check_tensor(weight, "weight", {dim, width}, dtype);
  TORCH_CHECK(weight.is_contiguous(), "weight must be contiguous");
  if (bias.has_value()) check_tensor(*bias, "bias", {dim}, dtype);
  auto out = at::empty({batch, dim}, x.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "causal_conv1d_update", [&] {
    conv_update_kernel<scalar_t>(conv_state.data_ptr<scalar_t>(), rows_of<scalar_t>(x),
                                 weight.data_ptr<scalar_t>(),
                                 bias.has_value() ? bias->contiguous().data_ptr<scalar_t>() : nullptr, silu, batch,
                                 dim, width, out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace samba

TORCH_LIBRARY_FRAGMENT(espnet_samba, m) {
  m.def("causal_conv1d_forward(Tensor x, Tensor weight_t, Tensor? bias, bool silu) -> Tensor");
  m.def("causal_conv1d_backward(Tensor grad_out, Tensor x, Tensor weight_t, Tensor? bias, bool silu) -> Tensor[]");
  m.def("causal_conv1d_update(Tensor x, Tensor(a!) conv_state, Tensor weight, Tensor? bias, bool silu) -> Tensor");
}

TORCH_LIBRARY_IMPL(espnet_samba, CPU, m) {
  m.impl("causal_conv1d_forward", &samba::causal_conv1d_forward);
  m.impl("causal_conv1d_backward", &samba::causal_conv1d_backward);
  m.impl("causal_conv1d_update", &samba::causal_conv1d_update);
}
