// The two recurrent kernels of one decoding step, shared by their stand-alone ops (causal_conv1d_update,
// selective_state_update) and by the whole mixer step (mixer_step.cpp).
//
// Each reads its per-sequence inputs through a row stride, so the mixer step passes views into its projections'
// outputs (x and z are halves of in_proj's rows, B and C slices of x_proj's) without copying them. A decoding step
// is microseconds of work: the batch is split over threads only from 2^16 state elements per thread.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "vector_math.h"

namespace samba {

constexpr int64_t kStepGrainElements = int64_t{1} << 16;

// A (batch, dim) input read row by row: element (b, d) is data[b * row_stride + d].
template <typename T>
struct StepRows {
  const T* data;
  int64_t row_stride;
  const T* row(int64_t b) const { return data ? data + b * row_stride : nullptr; }
};

// The rows of a (batch, n) tensor with unit stride along n (as check_rows admits), or none when it is absent.
template <typename T>
StepRows<T> rows_of(const std::optional<at::Tensor>& tensor) {
  if (!tensor.has_value()) return {nullptr, 0};
  return {tensor->data_ptr<T>(), tensor->stride(0)};
}

// One channel's conv step: shift x into its last `width` inputs (oldest first) and return their dot product with
// the channel's weights plus `value` (the bias). Shifted element by element: a few values, where a memmove call
// would cost more.
template <typename T, int kWidth>
inline T shift_and_convolve(T* state, const T* w, T x, T value, int64_t width) {
  const int64_t taps = kWidth > 0 ? kWidth : width;  // a compile-time width unrolls the loop
  for (int64_t k = 0; k + 1 < taps; ++k) {
    state[k] = state[k + 1];
    value += w[k] * state[k];
  }
  state[taps - 1] = x;
  return value + w[taps - 1] * x;
}

template <typename T, int kWidth>
void conv_update_rows(T* states, StepRows<T> x, const T* weight, const T* bias, bool silu, int64_t batch,
                      int64_t dim, int64_t width, T* out) {
  const int64_t grain = std::max<int64_t>(1, kStepGrainElements / std::max<int64_t>(1, dim * width));
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      T* state_b = states + b * dim * width;
      const T* x_b = x.row(b);
      T* out_b = out + b * dim;
      for (int64_t d = 0; d < dim; ++d) {
        out_b[d] = shift_and_convolve<T, kWidth>(state_b + d * width, weight + d * width, x_b[d],
                                                 bias ? bias[d] : T(0), width);
      }
      if (silu) {
        // Apart from the shifts, so that the sigmoid is vectorised over channels.
#pragma omp simd
        for (int64_t d = 0; d < dim; ++d) out_b[d] = out_b[d] * sigmoid(out_b[d]);
      }
    }
  });
}

// causal_conv1d_update: states (batch, dim, width) updated in place, weight (dim, width), out (batch, dim).
template <typename T>
void conv_update_kernel(T* states, StepRows<T> x, const T* weight, const T* bias, bool silu, int64_t batch,
                        int64_t dim, int64_t width, T* out) {
  if (width == 4) {  // mamba-ssm's d_conv, and every config here
    conv_update_rows<T, 4>(states, x, weight, bias, silu, batch, dim, width, out);
  } else {
    conv_update_rows<T, 0>(states, x, weight, bias, silu, batch, dim, width, out);
  }
}

// One channel's d_state states h (d_state,) at a decoding step: h = 2^(step_log2 a) h + input B; returns h . C.
template <typename T>
inline T step_channel_states(T* h, const T* a, const T* B, const T* C, T step_log2, T input, int64_t d_state) {
  T out = T(0);
#pragma omp simd reduction(+ : out)
  for (int64_t n = 0; n < d_state; ++n) {
    const T next = fast_exp2(step_log2 * a[n]) * h[n] + input * B[n];
    h[n] = next;
    out += next * C[n];
  }
  return out;
}

#if defined(__AVX512F__)
// The same, 16 states per vector on fast_exp2_avx512; a masked last vector takes any d_state (its idle lanes
// compute 2^0 * 0 + input * 0 and are neither stored nor summed into anything but zeros).
template <>
inline float step_channel_states<float>(float* h, const float* a, const float* B, const float* C, float step_log2,
                                        float input, int64_t d_state) {
  const __m512 rate = _mm512_set1_ps(step_log2), in = _mm512_set1_ps(input);
  __m512 out = _mm512_setzero_ps();
  for (int64_t n = 0; n < d_state; n += 16) {
    const __mmask16 lanes = d_state - n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (d_state - n)) - 1);
    const __m512 decay = fast_exp2_avx512(_mm512_mul_ps(rate, _mm512_maskz_loadu_ps(lanes, a + n)));
    const __m512 next = _mm512_fmadd_ps(decay, _mm512_maskz_loadu_ps(lanes, h + n),
                                        _mm512_mul_ps(in, _mm512_maskz_loadu_ps(lanes, B + n)));
    _mm512_mask_storeu_ps(h + n, lanes, next);
    out = _mm512_fmadd_ps(next, _mm512_maskz_loadu_ps(lanes, C + n), out);
  }
  return _mm512_reduce_add_ps(out);
}
#endif

// The per-sequence inputs of selective_state_update, each (batch, ·) through its row stride; z may be absent.
template <typename T>
struct StateUpdateRows {
  StepRows<T> x, dt, B, C, z;
};

// selective_state_update: states (batch, dim, d_state) updated in place, A (dim, d_state), D and dt_bias (dim,)
// or null, y (batch, dim). One batch element per work item: the per-channel parts (softplus, input, gate) as
// vectors over channels, then each channel's d_state states as one vector, so no lane waits on scalar math.
template <typename T>
void state_update_kernel(T* states, const StateUpdateRows<T>& rows, const T* A, const T* D, const T* dt_bias,
                         bool dt_softplus, int64_t batch, int64_t dim, int64_t d_state, T* y) {
  const int64_t grain = std::max<int64_t>(1, kStepGrainElements / std::max<int64_t>(1, dim * d_state));
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> step_log2(dim), input(dim);
    for (int64_t b = begin; b < end; ++b) {
      const T* x_b = rows.x.row(b);
      const T* dt_b = rows.dt.row(b);
      const T* z_b = rows.z.row(b);
      T* y_b = y + b * dim;
#pragma omp simd
      for (int64_t d = 0; d < dim; ++d) {
        T step = dt_b[d] + (dt_bias ? dt_bias[d] : T(0));
        step = dt_softplus ? softplus(step) : step;
        step_log2[d] = step * T(kLog2E);
        input[d] = step * x_b[d];
      }
      const T* B_b = rows.B.row(b);
      const T* C_b = rows.C.row(b);
      for (int64_t d = 0; d < dim; ++d) {
        y_b[d] = step_channel_states(states + (b * dim + d) * d_state, A + d * d_state, B_b, C_b, step_log2[d],
                                     input[d], d_state);
      }
#pragma omp simd
      for (int64_t d = 0; d < dim; ++d) {
        T out = y_b[d] + (D ? D[d] * x_b[d] : T(0));
        y_b[d] = z_b ? out * z_b[d] * sigmoid(z_b[d]) : out;
      }
    }
  });
}

}  // namespace samba
