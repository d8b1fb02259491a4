// One decoding step of a whole Mamba mixer in one op: in_proj, the causal conv update (+ SiLU), x_proj, dt_proj,
// the selective state update (softplus, D skip, SiLU gate) and out_proj.
//
// The same operations in the same order as the mixer's Python step (MambaMixer.step): the projections are
// at::linear, as F.linear is, and the two recurrent kernels are those of the stand-alone ops (decode_step.h),
// reading x, z, B and C as views into the projections' rows. What it removes is the Python between them: at
// batch 10 and d_inner 512 a step is a few tens of microseconds of arithmetic, and a dozen Python-level op calls
// cost as much again.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#include "decode_step.h"
#include "tensor_checks.h"

namespace samba {

at::Tensor mamba_mixer_step(const at::Tensor& hidden, const at::Tensor& conv_state, const at::Tensor& ssm_state,
                            const at::Tensor& in_proj_weight, const std::optional<at::Tensor>& in_proj_bias,
                            const at::Tensor& conv_weight, const std::optional<at::Tensor>& conv_bias,
                            const at::Tensor& x_proj_weight, const at::Tensor& dt_proj_weight,
                            const at::Tensor& dt_proj_bias, const at::Tensor& A_log, const at::Tensor& D,
                            const at::Tensor& out_proj_weight, const std::optional<at::Tensor>& out_proj_bias) {
  TORCH_CHECK(hidden.dim() == 2 && !hidden.is_cuda(), "hidden must be a CPU (batch, d_model) tensor, got ",
              hidden.sizes());
  const auto dtype = hidden.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "hidden must be float32 or float64, got ", dtype);
  TORCH_CHECK(A_log.dim() == 2 && conv_weight.dim() == 2 && dt_proj_weight.dim() == 2,
              "A_log, conv_weight and dt_proj_weight must be 2-d, got ", A_log.sizes(), ", ", conv_weight.sizes(),
              " and ", dt_proj_weight.sizes());
  // The sizes come from the parameters; the states passed in must match them.
  const int64_t batch = hidden.size(0), d_model = hidden.size(1);
  const int64_t d_inner = A_log.size(0), d_state = A_log.size(1), width = conv_weight.size(1);
  const int64_t dt_rank = dt_proj_weight.size(1);
  check_dense(conv_state, "conv_state", {batch, d_inner, width}, dtype);
  check_dense(ssm_state, "ssm_state", {batch, d_inner, d_state}, dtype);
  check_dense(in_proj_weight, "in_proj_weight", {2 * d_inner, d_model}, dtype);
  check_dense(in_proj_bias, "in_proj_bias", {2 * d_inner}, dtype);
  check_dense(conv_weight, "conv_weight", {d_inner, width}, dtype);
  check_dense(conv_bias, "conv_bias", {d_inner}, dtype);
  check_dense(x_proj_weight, "x_proj_weight", {dt_rank + 2 * d_state, d_inner}, dtype);
  check_dense(dt_proj_weight, "dt_proj_weight", {d_inner, dt_rank}, dtype);
  check_dense(dt_proj_bias, "dt_proj_bias", {d_inner}, dtype);
  check_dense(A_log, "A_log", {d_inner, d_state}, dtype);
  check_dense(D, "D", {d_inner}, dtype);
  check_dense(out_proj_weight, "out_proj_weight", {d_model, d_inner}, dtype);
  check_dense(out_proj_bias, "out_proj_bias", {d_model}, dtype);

  const at::Tensor xz = at::linear(hidden, in_proj_weight, in_proj_bias);  // (B, 2 d_inner): x, then z
  at::Tensor x = at::empty({batch, d_inner}, hidden.options());           // the convolved x
  at::Tensor y = at::empty({batch, d_inner}, hidden.options());
  at::Tensor x_dbl, dt;
  const at::Tensor A = at::exp(A_log).neg_();
  AT_DISPATCH_FLOATING_TYPES(dtype, "mamba_mixer_step", [&] {
    const scalar_t* xz_data = xz.data_ptr<scalar_t>();
    conv_update_kernel<scalar_t>(conv_state.data_ptr<scalar_t>(), StepRows<scalar_t>{xz_data, 2 * d_inner},
                                 conv_weight.data_ptr<scalar_t>(), pointer_of<scalar_t>(conv_bias), true, batch,
                                 d_inner, width, x.data_ptr<scalar_t>());
    x_dbl = at::linear(x, x_proj_weight);  // (B, dt_rank + 2 d_state): dt, B, C
    dt = at::linear(x_dbl.narrow(1, 0, dt_rank), dt_proj_weight);
    const scalar_t* x_dbl_data = x_dbl.data_ptr<scalar_t>();
    const int64_t x_dbl_stride = dt_rank + 2 * d_state;
    const StateUpdateRows<scalar_t> rows{
        StepRows<scalar_t>{x.data_ptr<scalar_t>(), d_inner}, StepRows<scalar_t>{dt.data_ptr<scalar_t>(), d_inner},
        StepRows<scalar_t>{x_dbl_data + dt_rank, x_dbl_stride},
        StepRows<scalar_t>{x_dbl_data + dt_rank + d_state, x_dbl_stride},
        StepRows<scalar_t>{xz_data + d_inner, 2 * d_inner}};
    state_update_kernel<scalar_t>(ssm_state.data_ptr<scalar_t>(), rows, A.data_ptr<scalar_t>(),
                                  D.data_ptr<scalar_t>(), dt_proj_bias.data_ptr<scalar_t>(), true, batch, d_inner,
                                  d_state, y.data_ptr<scalar_t>());
  });
  return at::linear(y, out_proj_weight, out_proj_bias);
}

}  // namespace samba

TORCH_LIBRARY_FRAGMENT(espnet_samba, m) {
  m.def(
      "mamba_mixer_step(Tensor hidden, Tensor(a!) conv_state, Tensor(b!) ssm_state, Tensor in_proj_weight, "
      "Tensor? in_proj_bias, Tensor conv_weight, Tensor? conv_bias, Tensor x_proj_weight, Tensor dt_proj_weight, "
      "Tensor dt_proj_bias, Tensor A_log, Tensor D, Tensor out_proj_weight, Tensor? out_proj_bias) -> Tensor");
}

TORCH_LIBRARY_IMPL(espnet_samba, CPU, m) { m.impl("mamba_mixer_step", &samba::mamba_mixer_step); }
