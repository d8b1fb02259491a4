// Fused CPU kernel of the CTC prefix score's forward recursion: one beam-search step of ESPnet's CTC scorer.
//
// For each hypothesis h and candidate token s, over the frames i = 0 .. L-1 after the prefix's first possible end,
//
//   r_n[i] = logaddexp(r_n[i-1], phi[i]) + x_token[i]       (the extended prefix ends in the token)
//   r_b[i] = logaddexp(r_n[i-1], r_b[i-1]) + x_blank[i]     (... ends in a blank)
//   psi    = logsumexp(r_n[-1], phi[i] + x_token[i] for all i)
//
// with r[-1] given. ESPnet's CTCPrefixScoreTH runs these as a Python loop over frames of small tensor operations;
// here a work item is one hypothesis, carried through the frames with its candidates as the vector lanes, so a
// step costs a few vector instructions per frame. The float form uses the polynomial exp / log1p of vector_math.h
// (a few ulp); double calls libm.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "tensor_checks.h"
#include "vector_math.h"

namespace samba {
namespace {

inline float log1p_of_exp_minus(float distance) { return log1p_unit(fast_exp(-distance)); }

inline double log1p_of_exp_minus(double distance) { return std::log1p(std::exp(-distance)); }

// log(e^a + e^b); logzero-sized or infinite inputs give the larger one (the ternaries also catch a NaN distance,
// from two -inf inputs, and keep the loop vectorisable).
template <typename T>
inline T log_add_exp(T a, T b) {
  const T larger = a > b ? a : b;
  T distance = a > b ? a - b : b - a;
  distance = distance < T(80) ? distance : T(80);
  return larger + log1p_of_exp_minus(distance);
}

// Lanes per hypothesis: the candidates rounded up to a multiple of 16, so that the frame loop is whole vectors
// (a pre-beam of 15 candidates would otherwise run as a scalar remainder loop, 5x slower).
constexpr int64_t kLaneMultiple = 16;

template <typename T>
void ctc_prefix_kernel(const T* r_start, const T* phi, const T* x_token, const T* x_blank, int64_t frames,
                       int64_t hyps, int64_t candidates, T* r, T* psi) {
  const int64_t lanes = (candidates + kLaneMultiple - 1) / kLaneMultiple * kLaneMultiple;
  at::parallel_for(0, hyps, 1, [&](int64_t begin, int64_t end) {
    // per hypothesis: r_n, r_b, psi, and the frame's phi and token log-probabilities, each `lanes` wide
    std::vector<T> scratch(5 * lanes, T(0));
    T* r_token = scratch.data();
    T* r_blank = r_token + lanes;
    T* psi_h = r_blank + lanes;
    T* phi_i = psi_h + lanes;
    T* token_i = phi_i + lanes;
    for (int64_t h = begin; h < end; ++h) {
      std::copy(r_start + h * candidates, r_start + (h + 1) * candidates, r_token);
      std::copy(r_start + (hyps + h) * candidates, r_start + (hyps + h + 1) * candidates, r_blank);
      std::copy(r_token, r_token + candidates, psi_h);
      for (int64_t i = 0; i < frames; ++i) {
        const int64_t row = (i * hyps + h) * candidates;
        std::copy(phi + row, phi + row + candidates, phi_i);
        std::copy(x_token + row, x_token + row + candidates, token_i);
        const T blank = x_blank[i * hyps + h];
#pragma omp simd
        for (int64_t s = 0; s < lanes; ++s) {
          const T next_token = log_add_exp(r_token[s], phi_i[s]) + token_i[s];
          const T next_blank = log_add_exp(r_token[s], r_blank[s]) + blank;
          psi_h[s] = log_add_exp(psi_h[s], phi_i[s] + token_i[s]);
          r_token[s] = next_token;
          r_blank[s] = next_blank;
        }
        T* out_token = r + (2 * i * hyps + h) * candidates;
        std::copy(r_token, r_token + candidates, out_token);
        std::copy(r_blank, r_blank + candidates, out_token + hyps * candidates);
      }
      std::copy(psi_h, psi_h + candidates, psi + h * candidates);
    }
  });
}

}  // namespace

std::vector<at::Tensor> ctc_prefix_forward(const at::Tensor& r_start, const at::Tensor& phi,
                                           const at::Tensor& x_token, const at::Tensor& x_blank) {
  TORCH_CHECK(phi.dim() == 3, "phi must be (frames, hyps, candidates), got ", phi.sizes());
  const int64_t frames = phi.size(0), hyps = phi.size(1), candidates = phi.size(2);
  const auto dtype = phi.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "phi must be float32 or float64, got ", dtype);
  check_dense(phi, "phi", {frames, hyps, candidates}, dtype);
  check_dense(r_start, "r_start", {2, hyps, candidates}, dtype);
  check_dense(x_token, "x_token", {frames, hyps, candidates}, dtype);
  check_dense(x_blank, "x_blank", {frames, hyps}, dtype);
  auto r = at::empty({frames, 2, hyps, candidates}, phi.options());
  auto psi = at::empty({hyps, candidates}, phi.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "ctc_prefix_forward", [&] {
    ctc_prefix_kernel<scalar_t>(r_start.data_ptr<scalar_t>(), phi.data_ptr<scalar_t>(),
                                x_token.data_ptr<scalar_t>(), x_blank.data_ptr<scalar_t>(), frames, hyps,
                                candidates, r.data_ptr<scalar_t>(), psi.data_ptr<scalar_t>());
  });
  return {r, psi};
}

}  // namespace samba

TORCH_LIBRARY_FRAGMENT(espnet_samba, m) {
  m.def("ctc_prefix_forward(Tensor r_start, Tensor phi, Tensor x_token, Tensor x_blank) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(espnet_samba, CPU, m) { m.impl("ctc_prefix_forward", &samba::ctc_prefix_forward); }
