// Fused CPU kernels of the selective scan: full-sequence forward, its backward, and the single-step state update.
//
// Layout: sequences are (batch, time, channel) with unit channel stride (any batch and time strides), which is
// how the Mamba mixer produces u, Δ, z, B and C; states are (batch, d_state, channel). A work item owns one batch
// element and a block of kLanes adjacent channels (one 512-bit vector, two 256-bit ones): it walks time once with
// the block's (d_state x kLanes) state in L1 (in registers for float32 at d_state 8 or 16 on AVX-512: see
// forward_block_in_registers), every multiply-add and exp a vector op over the block's channels.
// Items run in parallel over batch x channel blocks with at::parallel_for, so torch.set_num_threads holds.
//
// Training saves the state before every `chunk_length`-th frame. The backward recomputes a chunk's states from
// its saved start (forward in time), then runs the adjoint recurrence g_t = C_t dy_t + exp(Δ_{t+1} A) g_{t+1}
// back through the chunk, turning g and the states into every input's gradient in the same pass. dB and dC are
// sums over channels, so a backward item owns a group of channel blocks and sums their lanes into a per-group
// partial, which the caller adds up over groups; the groups exist only to give every thread work at small batch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "cache_lines.h"
#include "decode_step.h"
#include "tensor_checks.h"
#include "vector_math.h"

namespace samba {
namespace {

template <typename T>
constexpr int kLanes = 64 / static_cast<int>(sizeof(T));

// A (batch, time, channel) sequence with unit channel stride; null when the optional input is absent.
template <typename T>
struct Sequence {
  const T* data = nullptr;
  int64_t batch_stride = 0;
  int64_t time_stride = 0;
  const T* at(int64_t b, int64_t t) const { return data + b * batch_stride + t * time_stride; }
  // Whether every frame's row starts on the 64-byte grid (true for an absent sequence).
  bool rows_on_grid() const {
    constexpr int64_t per_line = static_cast<int64_t>(kCacheLine / sizeof(T));
    return reinterpret_cast<std::uintptr_t>(data) % kCacheLine == 0 && batch_stride % per_line == 0 &&
           time_stride % per_line == 0;
  }
};

template <typename T>
Sequence<T> sequence_of(const std::optional<at::Tensor>& tensor) {
  if (!tensor.has_value()) return {};
  return {tensor->data_ptr<T>(), tensor->stride(0), tensor->stride(1)};
}

template <typename T>
struct ScanProblem {
  int64_t batch, length, dim, d_state, chunk_length;
  Sequence<T> u, delta, z, B, C;
  const T* A_t;            // (d_state, dim)
  const T* skip;           // D (dim,) or null
  const T* delta_bias;     // (dim,) or null
  const T* initial_state;  // (batch, d_state, dim) or null
  const int64_t* lengths;  // (batch,) or null: frames at t >= lengths[b] leave the state unchanged (Δ = 0)
  bool delta_softplus;

  int64_t num_chunks() const { return (length + chunk_length - 1) / chunk_length; }
  int64_t valid_length(int64_t b) const { return lengths ? std::min(lengths[b], length) : length; }
};

// Lane-wise loads of a channel block: `count` real channels, zeros in the lanes past them. A full block is one
// cache line's worth, read so that it never straddles two lines (cache_lines.h) unless the caller knows that
// `source` is on the 64-byte grid (`OnGrid`): rows of a channel count that is not a multiple of a block start
// off it.
template <typename T, bool Full, bool OnGrid = false>
__attribute__((always_inline)) inline void load_block(T* lanes, const T* source, int count) {
  constexpr int L = kLanes<T>;
  if (Full) {
#if defined(__AVX512F__)
    static_assert(sizeof(T) * L == kCacheLine, "a full block is one cache line");
    const float* bytes = reinterpret_cast<const float*>(source);
    if constexpr (OnGrid) {
      _mm512_storeu_ps(reinterpret_cast<float*>(lanes), _mm512_loadu_ps(bytes));
    } else {
      _mm512_storeu_ps(reinterpret_cast<float*>(lanes), load_cache_line_unsplit(bytes));
    }
#else
#pragma omp simd
    for (int k = 0; k < L; ++k) lanes[k] = source[k];
#endif
  } else {
    for (int k = 0; k < L; ++k) lanes[k] = k < count ? source[k] : T(0);
  }
}

template <typename T, bool Full>
inline void store_block(T* target, const T* lanes, int count) {
  constexpr int L = kLanes<T>;
  const int n = Full ? L : count;
  for (int k = 0; k < n; ++k) target[k] = lanes[k];
}

// Block-wide copies of the (d_state, dim) rows of A and of a state into (d_state, kLanes) lane arrays.
template <typename T, bool Full>
inline void load_state_rows(T* lanes, const T* rows, int64_t d_state, int64_t dim, int count) {
  for (int64_t n = 0; n < d_state; ++n) load_block<T, Full>(lanes + n * kLanes<T>, rows + n * dim, count);
}

template <typename T, bool Full>
inline void store_state_rows(T* rows, const T* lanes, int64_t d_state, int64_t dim, int count) {
  for (int64_t n = 0; n < d_state; ++n) store_block<T, Full>(rows + n * dim, lanes + n * kLanes<T>, count);
}

// A block's Δ bias and D skip lanes, zeros where the problem has none.
template <typename T, bool Full>
inline void load_bias_and_skip(const ScanProblem<T>& p, int64_t d0, int count, T* bias, T* skip) {
  std::fill(bias, bias + kLanes<T>, T(0));
  std::fill(skip, skip + kLanes<T>, T(0));
  if (p.delta_bias) load_block<T, Full>(bias, p.delta_bias + d0, count);
  if (p.skip) load_block<T, Full>(skip, p.skip + d0, count);
}

// Δ_t of a block after bias, softplus and the length mask, and the raw u_t; `VectorSoftplus`: softplus in its
// AVX-512 form (float32 only), as the register-resident forward computes it. Always inlined: a call inside a
// frame loop whose state lives in vector registers would spill and reload every one of them (the calling
// convention preserves no vector register).
template <typename T, bool Full, bool VectorSoftplus = false, bool OnGrid = false>
__attribute__((always_inline)) inline void load_step_sizes(const ScanProblem<T>& p, int64_t b, int64_t t,
                                                           int64_t d0, int count, bool valid, const T* bias, T* dt,
                                                           T* u) {
  constexpr int L = kLanes<T>;
  load_block<T, Full, OnGrid>(u, p.u.at(b, t) + d0, count);
  load_block<T, Full, OnGrid>(dt, p.delta.at(b, t) + d0, count);
  if (!valid) {
    std::fill(dt, dt + L, T(0));
  } else if (p.delta_softplus) {
#if defined(__AVX512F__)
    if constexpr (VectorSoftplus) {
      static_assert(std::is_same_v<T, float>, "softplus_avx512 is float32");
      _mm512_storeu_ps(dt, softplus_avx512(_mm512_add_ps(_mm512_loadu_ps(dt), _mm512_loadu_ps(bias))));
      return;
    }
#endif
#pragma omp simd
    for (int k = 0; k < L; ++k) dt[k] = softplus(dt[k] + bias[k]);
  } else {
#pragma omp simd
    for (int k = 0; k < L; ++k) dt[k] += bias[k];
  }
}

// One state row n of a block at one frame, lane by lane: h = 2^(Δ rate) h + Δu B_n, y += h C_n, where rate is
// A log2(e). The scan's innermost loop: d_state of these per frame and block.
template <typename T>
inline void advance_state_row(T* h, const T* rate, const T* dt, const T* du, T b_n, T c_n, T* y) {
#pragma omp simd
  for (int k = 0; k < kLanes<T>; ++k) {
    const T next = fast_exp2(dt[k] * rate[k]) * h[k] + du[k] * b_n;
    h[k] = next;
    y[k] += next * c_n;
  }
}

// The backward's recomputation of one state row: decay = 2^(Δ rate), after = decay before + Δu B_n.
template <typename T>
inline void recompute_state_row(const T* before, const T* rate, const T* dt, const T* du, T b_n, T* decay,
                                T* after) {
#pragma omp simd
  for (int k = 0; k < kLanes<T>; ++k) {
    decay[k] = fast_exp2(dt[k] * rate[k]);
    after[k] = decay[k] * before[k] + du[k] * b_n;
  }
}

#if defined(__AVX512F__)
// The same rows as one 16-lane vector each, on fast_exp2_avx512.
template <>
inline void advance_state_row<float>(float* h, const float* rate, const float* dt, const float* du, float b_n,
                                     float c_n, float* y) {
  const __m512 decay = fast_exp2_avx512(_mm512_mul_ps(_mm512_loadu_ps(dt), _mm512_loadu_ps(rate)));
  const __m512 next =
      _mm512_fmadd_ps(decay, _mm512_loadu_ps(h), _mm512_mul_ps(_mm512_loadu_ps(du), _mm512_set1_ps(b_n)));
  _mm512_storeu_ps(h, next);
  _mm512_storeu_ps(y, _mm512_fmadd_ps(next, _mm512_set1_ps(c_n), _mm512_loadu_ps(y)));
}

template <>
inline void recompute_state_row<float>(const float* before, const float* rate, const float* dt, const float* du,
                                       float b_n, float* decay, float* after) {
  const __m512 d = fast_exp2_avx512(_mm512_mul_ps(_mm512_loadu_ps(dt), _mm512_loadu_ps(rate)));
  _mm512_storeu_ps(decay, d);
  _mm512_storeu_ps(after, _mm512_fmadd_ps(d, _mm512_loadu_ps(before),
                                          _mm512_mul_ps(_mm512_loadu_ps(du), _mm512_set1_ps(b_n))));
}
#endif

template <typename T, bool Full>
void forward_block(const ScanProblem<T>& p, int64_t b, int64_t d0, int count, T* out, T* last_state,
                   T* chunk_states, T* state, T* decay_rates) {
  constexpr int L = kLanes<T>;
  const int64_t N = p.d_state, dim = p.dim;
  alignas(kCacheLine) T bias[L], skip[L], dt[L], u[L], du[L], y[L], gate[L];
  load_state_rows<T, Full>(decay_rates, p.A_t + d0, N, dim, count);
  for (int64_t i = 0; i < N * L; ++i) decay_rates[i] *= T(kLog2E);  // exp(Δ A) = 2^(Δ A log2 e)
  if (p.initial_state) {
    load_state_rows<T, Full>(state, p.initial_state + b * N * dim + d0, N, dim, count);
  } else {
    std::fill(state, state + N * L, T(0));
  }
  load_bias_and_skip<T, Full>(p, d0, count, bias, skip);
  const int64_t valid = p.valid_length(b);
  for (int64_t t = 0; t < p.length; ++t) {
    if (chunk_states && t % p.chunk_length == 0) {
      store_state_rows<T, Full>(chunk_states + (b * p.num_chunks() + t / p.chunk_length) * N * dim + d0, state, N,
                                dim, count);
    }
    load_step_sizes<T, Full>(p, b, t, d0, count, t < valid, bias, dt, u);
    const T* B_t = p.B.at(b, t);
    const T* C_t = p.C.at(b, t);
#pragma omp simd
    for (int k = 0; k < L; ++k) {
      y[k] = skip[k] * u[k];
      du[k] = dt[k] * u[k];
    }
    for (int64_t n = 0; n < N; ++n) {
      advance_state_row(state + n * L, decay_rates + n * L, dt, du, B_t[n], C_t[n], y);
    }
    if (p.z.data) {
      load_block<T, Full>(gate, p.z.at(b, t) + d0, count);
#pragma omp simd
      for (int k = 0; k < L; ++k) y[k] *= gate[k] * sigmoid(gate[k]);
    }
    store_block<T, Full>(out + (b * p.length + t) * dim + d0, y, count);
  }
  store_state_rows<T, Full>(last_state + b * N * dim + d0, state, N, dim, count);
}

int64_t num_blocks(int64_t dim, int lanes) { return (dim + lanes - 1) / lanes; }

#if defined(__AVX512F__)
// forward_block for float32 on AVX-512 with d_state a compile-time N: the block's N state rows and decay rates
// stay in vector registers for the whole walk through time, where forward_block (any d_state) loads and stores
// every state row and the output lanes at every frame. The same operations in the same order (softplus and the
// gate's sigmoid in their AVX-512 forms, which compute what softplus(float) and sigmoid(float) compute): equal
// bit for bit, as test_ops_cpu_kernels.py checks.
template <int N, bool Full, bool OnGrid>
void forward_block_in_registers(const ScanProblem<float>& p, int64_t b, int64_t d0, int count, float* out,
                                float* last_state, float* chunk_states) {
  constexpr int L = kLanes<float>;
  const int64_t dim = p.dim;
  alignas(kCacheLine) float bias[L], skip[L], dt[L] = {}, u[L] = {}, gate[L], lanes[L];
  __m512 state[N], rate[N];  // stored through `lanes`, never by address: an address taken (a lambda capturing the
                             // array did) makes the compiler keep every row in memory too, stored at every frame
  for (int n = 0; n < N; ++n) {
    load_block<float, Full>(lanes, p.A_t + n * dim + d0, count);
    rate[n] = _mm512_mul_ps(_mm512_loadu_ps(lanes), _mm512_set1_ps(static_cast<float>(kLog2E)));
    std::fill(lanes, lanes + L, 0.0f);
    if (p.initial_state) load_block<float, Full>(lanes, p.initial_state + (b * N + n) * dim + d0, count);
    state[n] = _mm512_loadu_ps(lanes);
  }
  load_bias_and_skip<float, Full>(p, d0, count, bias, skip);
  const __m512 skip_v = _mm512_loadu_ps(skip);
  const int64_t valid = p.valid_length(b);
  // Software-pipelined: the step sizes (softplus) and the gate (sigmoid) do not depend on the state, so the next
  // frame's step sizes are computed one frame ahead and this frame's gate before its state rows, where the
  // processor overlaps them with the rows; at the head of the frame that needs them the step sizes put a long
  // dependency chain in front of every row.
  if (p.length > 0) load_step_sizes<float, Full, true, OnGrid>(p, b, 0, d0, count, 0 < valid, bias, dt, u);
  __m512 next_dt = _mm512_loadu_ps(dt), next_u = _mm512_loadu_ps(u), gate_factor = _mm512_setzero_ps();
  for (int64_t t = 0; t < p.length; ++t) {
    if (chunk_states && t % p.chunk_length == 0) {
      float* rows = chunk_states + (b * p.num_chunks() + t / p.chunk_length) * N * dim + d0;
#pragma GCC unroll 16
      for (int n = 0; n < N; ++n) {
        _mm512_storeu_ps(lanes, state[n]);
        store_block<float, Full>(rows + n * dim, lanes, count);
      }
    }
    const __m512 dt_v = next_dt, u_v = next_u;
    if (t + 1 < p.length) {
      load_step_sizes<float, Full, true, OnGrid>(p, b, t + 1, d0, count, t + 1 < valid, bias, dt, u);
      next_dt = _mm512_loadu_ps(dt);
      next_u = _mm512_loadu_ps(u);
    }
    if (p.z.data) {
      load_block<float, Full, OnGrid>(gate, p.z.at(b, t) + d0, count);
      const __m512 gate_v = _mm512_loadu_ps(gate);
      gate_factor = _mm512_mul_ps(gate_v, sigmoid_avx512(gate_v));
    }
    const float* B_t = p.B.at(b, t);
    const float* C_t = p.C.at(b, t);
    const __m512 du = _mm512_mul_ps(dt_v, u_v);
    __m512 y = _mm512_mul_ps(skip_v, u_v);
#pragma GCC unroll 16
    for (int n = 0; n < N; ++n) {
      const __m512 decay = fast_exp2_avx512(_mm512_mul_ps(dt_v, rate[n]));
      state[n] = _mm512_fmadd_ps(decay, state[n], _mm512_mul_ps(du, _mm512_set1_ps(B_t[n])));
      y = _mm512_fmadd_ps(state[n], _mm512_set1_ps(C_t[n]), y);
    }
    if (p.z.data) y = _mm512_mul_ps(y, gate_factor);
    _mm512_storeu_ps(lanes, y);
    store_block<float, Full>(out + (b * p.length + t) * dim + d0, lanes, count);
  }
#pragma GCC unroll 16
  for (int n = 0; n < N; ++n) {
    _mm512_storeu_ps(lanes, state[n]);
    store_block<float, Full>(last_state + (b * N + n) * dim + d0, lanes, count);
  }
}
#endif

#if defined(__AVX512F__)
// forward_block_in_registers<N> with its full blocks' per-frame rows read by single 512-bit loads where all of
// them lie on the 64-byte grid (every row of a d_inner that is a multiple of 16, in torch's aligned tensors).
template <int N, bool Full>
void forward_block_in_registers_on_or_off_grid(const ScanProblem<float>& p, int64_t b, int64_t d0, int count,
                                               float* out, float* last_state, float* chunk_states) {
  if constexpr (Full) {
    if (p.u.rows_on_grid() && p.delta.rows_on_grid() && p.z.rows_on_grid()) {
      return forward_block_in_registers<N, true, true>(p, b, d0, count, out, last_state, chunk_states);
    }
  }
  forward_block_in_registers<N, Full, false>(p, b, d0, count, out, last_state, chunk_states);
}
#endif

// One channel block through the whole sequence: in registers where forward_block_in_registers applies.
template <typename T, bool Full>
void forward_block_any(const ScanProblem<T>& p, int64_t b, int64_t d0, int count, T* out, T* last_state,
                       T* chunk_states, T* state, T* decay_rates) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (p.d_state == 16) {
      return forward_block_in_registers_on_or_off_grid<16, Full>(p, b, d0, count, out, last_state, chunk_states);
    }
    if (p.d_state == 8) {
      return forward_block_in_registers_on_or_off_grid<8, Full>(p, b, d0, count, out, last_state, chunk_states);
    }
  }
#endif
  forward_block<T, Full>(p, b, d0, count, out, last_state, chunk_states, state, decay_rates);
}

template <typename T>
void forward_kernel(const ScanProblem<T>& p, T* out, T* last_state, T* chunk_states) {
  constexpr int L = kLanes<T>;
  const int64_t blocks = num_blocks(p.dim, L);
  at::parallel_for(0, p.batch * blocks, 1, [&](int64_t begin, int64_t end) {
    CacheLineVector<T> state(p.d_state * L), decay_rates(p.d_state * L);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks, d0 = (item % blocks) * L;
      const int count = static_cast<int>(std::min<int64_t>(L, p.dim - d0));
      if (count == L) {
        forward_block_any<T, true>(p, b, d0, count, out, last_state, chunk_states, state.data(), decay_rates.data());
      } else {
        forward_block_any<T, false>(p, b, d0, count, out, last_state, chunk_states, state.data(), decay_rates.data());
      }
    }
  });
}

// The gradients a backward item writes: full tensors, per-batch partials (summed over batch by the caller) and
// per-group partials of dB, dC (summed over groups).
template <typename T>
struct ScanGradients {
  Sequence<T> grad_out;
  const T* grad_last_state;  // (batch, d_state, dim) or null
  const T* chunk_states;     // (batch, num_chunks, d_state, dim)
  T *grad_u, *grad_delta, *grad_z;            // (batch, length, dim); grad_z null without z
  T *grad_B_groups, *grad_C_groups;           // (groups, batch, length, d_state)
  T *grad_A_t_batches;                        // (batch, d_state, dim)
  T *grad_D_batches, *grad_delta_bias_batches;  // (batch, dim), null when absent
  T* grad_initial_state;                      // (batch, d_state, dim)
};

// Per-item scratch: one chunk's recomputed states and decays, and the adjoint and accumulators of each block of
// the item's group, kept across chunks.
template <typename T>
struct BackwardScratch {
  CacheLineVector<T> states, decays, step_sizes, decay_rates, decay_rates_log2, dB_lanes, dC_lanes;
  CacheLineVector<T> adjoints, dA_lanes, dD_lanes, dbias_lanes;
  BackwardScratch(int64_t chunk_length, int64_t d_state, int64_t group_blocks) {
    constexpr int L = kLanes<T>;
    states.resize((chunk_length + 1) * d_state * L);
    decays.resize(chunk_length * d_state * L);
    step_sizes.resize(chunk_length * L);
    decay_rates.resize(d_state * L);
    decay_rates_log2.resize(d_state * L);
    dB_lanes.resize(chunk_length * d_state * L);
    dC_lanes.resize(chunk_length * d_state * L);
    adjoints.resize(group_blocks * d_state * L);
    dA_lanes.resize(group_blocks * d_state * L);
    dD_lanes.resize(group_blocks * L);
    dbias_lanes.resize(group_blocks * L);
  }
};

// One channel block through one chunk [t0, t1) of the backward; `slot` is the block's index in its group.
template <typename T, bool Full>
void backward_block_chunk(const ScanProblem<T>& p, const ScanGradients<T>& g, BackwardScratch<T>& s, int64_t b,
                          int64_t chunk, int64_t t0, int64_t t1, int64_t d0, int count, int64_t slot) {
  constexpr int L = kLanes<T>;
  const int64_t N = p.d_state, dim = p.dim, NL = N * L;
  alignas(kCacheLine) T bias[L], skip[L], u[L], du[L], dy[L], gate[L], gate_sigmoid[L], grad_out[L];
  alignas(kCacheLine) T pre_gate[L], grad_delta_u[L], grad_dt[L], grad_u[L], lanes[L];
  load_bias_and_skip<T, Full>(p, d0, count, bias, skip);
  T* decay_rates = s.decay_rates.data();
  T* decay_rates_log2 = s.decay_rates_log2.data();
  load_state_rows<T, Full>(decay_rates, p.A_t + d0, N, dim, count);
  for (int64_t i = 0; i < N * L; ++i) decay_rates_log2[i] = decay_rates[i] * T(kLog2E);
  const int64_t valid = p.valid_length(b);

  // Recompute the chunk's states h_{t0-1} .. h_{t1-1} and decays exp(Δ_t A).
  load_state_rows<T, Full>(s.states.data(), g.chunk_states + (b * p.num_chunks() + chunk) * N * dim + d0, N, dim,
                           count);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t i = t - t0;
    T* step = s.step_sizes.data() + i * L;
    load_step_sizes<T, Full>(p, b, t, d0, count, t < valid, bias, step, u);
    const T* B_t = p.B.at(b, t);
    const T* before = s.states.data() + i * NL;
    T* after = s.states.data() + (i + 1) * NL;
    T* decay = s.decays.data() + i * NL;
#pragma omp simd
    for (int k = 0; k < L; ++k) du[k] = step[k] * u[k];
    for (int64_t n = 0; n < N; ++n) {
      recompute_state_row(before + n * L, decay_rates_log2 + n * L, step, du, B_t[n], decay + n * L, after + n * L);
    }
  }

  T* adjoint = s.adjoints.data() + slot * NL;  // exp(Δ_{t+1} A) g_{t+1}, carried backwards
  T* dA = s.dA_lanes.data() + slot * NL;
  T* dD = s.dD_lanes.data() + slot * L;
  T* dbias = s.dbias_lanes.data() + slot * L;
  for (int64_t t = t1 - 1; t >= t0; --t) {
    const int64_t i = t - t0;
    const T* step = s.step_sizes.data() + i * L;
    const T* before = s.states.data() + i * NL;
    const T* after = s.states.data() + (i + 1) * NL;
    const T* decay = s.decays.data() + i * NL;
    const T* B_t = p.B.at(b, t);
    const T* C_t = p.C.at(b, t);
    T* dB_t = s.dB_lanes.data() + i * NL;
    T* dC_t = s.dC_lanes.data() + i * NL;
    load_block<T, Full>(u, p.u.at(b, t) + d0, count);
    load_block<T, Full>(grad_out, g.grad_out.at(b, t) + d0, count);
    if (p.z.data) {
      load_block<T, Full>(gate, p.z.at(b, t) + d0, count);
#pragma omp simd
      for (int k = 0; k < L; ++k) {
        gate_sigmoid[k] = sigmoid(gate[k]);
        dy[k] = grad_out[k] * gate[k] * gate_sigmoid[k];
      }
    } else {
      std::copy(grad_out, grad_out + L, dy);
    }
#pragma omp simd
    for (int k = 0; k < L; ++k) {
      du[k] = step[k] * u[k];
      pre_gate[k] = skip[k] * u[k];
      grad_delta_u[k] = T(0);
      grad_dt[k] = T(0);
    }
    for (int64_t n = 0; n < N; ++n) {
      const T b_n = B_t[n], c_n = C_t[n];
      const int64_t o = n * L;
#pragma omp simd
      for (int k = 0; k < L; ++k) {
        const T adjoint_t = adjoint[o + k] + c_n * dy[k];  // g_t = dLoss/dh_t
        dC_t[o + k] += after[o + k] * dy[k];
        dB_t[o + k] += adjoint_t * du[k];
        grad_delta_u[k] += adjoint_t * b_n;
        pre_gate[k] += c_n * after[o + k];
        const T through_decay = adjoint_t * before[o + k] * decay[o + k];  // dLoss/d(Δ_t A)
        grad_dt[k] += through_decay * decay_rates[o + k];
        dA[o + k] += through_decay * step[k];
        adjoint[o + k] = decay[o + k] * adjoint_t;
      }
    }
#pragma omp simd
    for (int k = 0; k < L; ++k) {
      grad_u[k] = grad_delta_u[k] * step[k] + skip[k] * dy[k];
      grad_dt[k] += grad_delta_u[k] * u[k];
      dD[k] += dy[k] * u[k];
    }
    if (t >= valid) {
      std::fill(grad_dt, grad_dt + L, T(0));
    } else if (p.delta_softplus) {
      load_block<T, Full>(lanes, p.delta.at(b, t) + d0, count);
#pragma omp simd
      for (int k = 0; k < L; ++k) grad_dt[k] *= sigmoid(lanes[k] + bias[k]);
    }
#pragma omp simd
    for (int k = 0; k < L; ++k) dbias[k] += grad_dt[k];
    store_block<T, Full>(g.grad_u + (b * p.length + t) * dim + d0, grad_u, count);
    store_block<T, Full>(g.grad_delta + (b * p.length + t) * dim + d0, grad_dt, count);
    if (p.z.data) {
#pragma omp simd
      for (int k = 0; k < L; ++k) {
        const T sg = gate_sigmoid[k];
        lanes[k] = grad_out[k] * pre_gate[k] * sg * (T(1) + gate[k] * (T(1) - sg));
      }
      store_block<T, Full>(g.grad_z + (b * p.length + t) * dim + d0, lanes, count);
    }
  }
}

template <typename T>
void backward_kernel(const ScanProblem<T>& p, const ScanGradients<T>& g, int64_t groups) {
  constexpr int L = kLanes<T>;
  const int64_t N = p.d_state, dim = p.dim, NL = N * L;
  const int64_t blocks = num_blocks(dim, L);
  const int64_t group_blocks = (blocks + groups - 1) / groups;
  at::parallel_for(0, p.batch * groups, 1, [&](int64_t begin, int64_t end) {
    BackwardScratch<T> s(p.chunk_length, N, group_blocks);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / groups, group = item % groups;
      const int64_t first = group * group_blocks, last = std::min(blocks, first + group_blocks);
      std::fill(s.adjoints.begin(), s.adjoints.end(), T(0));
      std::fill(s.dA_lanes.begin(), s.dA_lanes.end(), T(0));
      std::fill(s.dD_lanes.begin(), s.dD_lanes.end(), T(0));
      std::fill(s.dbias_lanes.begin(), s.dbias_lanes.end(), T(0));
      for (int64_t block = first; block < last; ++block) {
        const int64_t d0 = block * L;
        const int count = static_cast<int>(std::min<int64_t>(L, dim - d0));
        if (g.grad_last_state) {
          load_state_rows<T, false>(s.adjoints.data() + (block - first) * NL, g.grad_last_state + b * N * dim + d0,
                                    N, dim, count);
        }
      }
      T* grad_B = g.grad_B_groups + (group * p.batch + b) * p.length * N;
      T* grad_C = g.grad_C_groups + (group * p.batch + b) * p.length * N;
      for (int64_t chunk = p.num_chunks() - 1; chunk >= 0; --chunk) {
        const int64_t t0 = chunk * p.chunk_length, t1 = std::min(p.length, t0 + p.chunk_length);
        std::fill(s.dB_lanes.begin(), s.dB_lanes.end(), T(0));
        std::fill(s.dC_lanes.begin(), s.dC_lanes.end(), T(0));
        for (int64_t block = first; block < last; ++block) {
          const int64_t d0 = block * L;
          const int count = static_cast<int>(std::min<int64_t>(L, dim - d0));
          if (count == L) {
            backward_block_chunk<T, true>(p, g, s, b, chunk, t0, t1, d0, count, block - first);
          } else {
            backward_block_chunk<T, false>(p, g, s, b, chunk, t0, t1, d0, count, block - first);
          }
        }
        for (int64_t t = t0; t < t1; ++t) {
          for (int64_t n = 0; n < N; ++n) {
            const T* dB_lanes = s.dB_lanes.data() + ((t - t0) * N + n) * L;
            const T* dC_lanes = s.dC_lanes.data() + ((t - t0) * N + n) * L;
            T dB_sum = T(0), dC_sum = T(0);
            for (int k = 0; k < L; ++k) {
              dB_sum += dB_lanes[k];
              dC_sum += dC_lanes[k];
            }
            grad_B[t * N + n] = dB_sum;
            grad_C[t * N + n] = dC_sum;
          }
        }
      }
      for (int64_t block = first; block < last; ++block) {
        const int64_t d0 = block * L, slot = block - first;
        const int count = static_cast<int>(std::min<int64_t>(L, dim - d0));
        store_state_rows<T, false>(g.grad_initial_state + b * N * dim + d0, s.adjoints.data() + slot * NL, N, dim,
                                   count);
        store_state_rows<T, false>(g.grad_A_t_batches + b * N * dim + d0, s.dA_lanes.data() + slot * NL, N, dim,
                                   count);
        if (g.grad_D_batches) {
          store_block<T, false>(g.grad_D_batches + b * dim + d0, s.dD_lanes.data() + slot * L, count);
        }
        if (g.grad_delta_bias_batches) {
          store_block<T, false>(g.grad_delta_bias_batches + b * dim + d0, s.dbias_lanes.data() + slot * L, count);
        }
      }
    }
  });
}

void check_sequence(const at::Tensor& tensor, const char* name, int64_t batch, int64_t length, int64_t width,
                    at::ScalarType dtype) {
  TORCH_CHECK(tensor.dim() == 3 && tensor.size(0) == batch && tensor.size(1) == length && tensor.size(2) == width,
              name, " must be (", batch, ", ", length, ", ", width, "), got ", tensor.sizes());
  TORCH_CHECK(tensor.scalar_type() == dtype, name, " must be ", dtype, ", got ", tensor.scalar_type());
  TORCH_CHECK(width <= 1 || tensor.stride(2) == 1, name, " must have unit stride along its last dimension");
  TORCH_CHECK(!tensor.is_cuda(), name, " must be a CPU tensor");
}

template <typename T>
ScanProblem<T> make_problem(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A_t, const at::Tensor& B,
                            const at::Tensor& C, const std::optional<at::Tensor>& D,
                            const std::optional<at::Tensor>& z, const std::optional<at::Tensor>& delta_bias,
                            const std::optional<at::Tensor>& initial_state, const std::optional<at::Tensor>& lengths,
                            bool delta_softplus, int64_t chunk_length) {
  ScanProblem<T> p;
  p.batch = u.size(0);
  p.length = u.size(1);
  p.dim = u.size(2);
  p.d_state = A_t.size(0);
  p.chunk_length = chunk_length;
  p.u = sequence_of<T>(u);
  p.delta = sequence_of<T>(delta);
  p.z = sequence_of<T>(z);
  p.B = sequence_of<T>(B);
  p.C = sequence_of<T>(C);
  p.A_t = A_t.data_ptr<T>();
  p.skip = pointer_of<T>(D);
  p.delta_bias = pointer_of<T>(delta_bias);
  p.initial_state = pointer_of<T>(initial_state);
  p.lengths = lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr;
  p.delta_softplus = delta_softplus;
  return p;
}

void check_problem(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A_t, const at::Tensor& B,
                   const at::Tensor& C, const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
                   const std::optional<at::Tensor>& delta_bias, const std::optional<at::Tensor>& initial_state,
                   const std::optional<at::Tensor>& lengths, int64_t chunk_length) {
  TORCH_CHECK(u.dim() == 3, "u must be (batch, length, dim), got ", u.sizes());
  TORCH_CHECK(A_t.dim() == 2, "A_t must be (d_state, dim), got ", A_t.sizes());
  TORCH_CHECK(chunk_length >= 1, "chunk_length must be positive, got ", chunk_length);
  const auto dtype = u.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "the CPU scan kernels compute in float32 or float64, got ",
              dtype);
  const int64_t batch = u.size(0), length = u.size(1), dim = u.size(2), d_state = A_t.size(0);
  check_sequence(u, "u", batch, length, dim, dtype);
  check_sequence(delta, "delta", batch, length, dim, dtype);
  check_sequence(B, "B", batch, length, d_state, dtype);
  check_sequence(C, "C", batch, length, d_state, dtype);
  if (z.has_value()) check_sequence(*z, "z", batch, length, dim, dtype);
  check_dense(A_t, "A_t", {d_state, dim}, dtype);
  check_dense(D, "D", {dim}, dtype);
  check_dense(delta_bias, "delta_bias", {dim}, dtype);
  check_dense(initial_state, "initial_state", {batch, d_state, dim}, dtype);
  check_dense(lengths, "lengths", {batch}, at::kLong);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> selective_scan_forward(
    const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A_t, const at::Tensor& B, const at::Tensor& C,
    const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
    const std::optional<at::Tensor>& delta_bias, const std::optional<at::Tensor>& initial_state,
    const std::optional<at::Tensor>& lengths, bool delta_softplus, int64_t chunk_length, bool save_chunk_states) {
  check_problem(u, delta, A_t, B, C, D, z, delta_bias, initial_state, lengths, chunk_length);
  const int64_t batch = u.size(0), length = u.size(1), dim = u.size(2), d_state = A_t.size(0);
  const int64_t num_chunks = (length + chunk_length - 1) / chunk_length;
  auto out = at::empty({batch, length, dim}, u.options());
  auto last_state = at::empty({batch, d_state, dim}, u.options());
  auto chunk_states = at::empty({save_chunk_states ? batch : 0, num_chunks, d_state, dim}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_forward", [&] {
    const auto p = make_problem<scalar_t>(u, delta, A_t, B, C, D, z, delta_bias, initial_state, lengths,
                                          delta_softplus, chunk_length);
    forward_kernel<scalar_t>(p, out.data_ptr<scalar_t>(), last_state.data_ptr<scalar_t>(),
                             save_chunk_states ? chunk_states.data_ptr<scalar_t>() : nullptr);
  });
  return {out, last_state, chunk_states};
}

std::vector<at::Tensor> selective_scan_backward(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_last_state, const at::Tensor& u,
    const at::Tensor& delta, const at::Tensor& A_t, const at::Tensor& B, const at::Tensor& C,
    const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
    const std::optional<at::Tensor>& delta_bias, const std::optional<at::Tensor>& lengths,
    const at::Tensor& chunk_states, bool delta_softplus, int64_t chunk_length) {
  check_problem(u, delta, A_t, B, C, D, z, delta_bias, std::nullopt, lengths, chunk_length);
  const int64_t batch = u.size(0), length = u.size(1), dim = u.size(2), d_state = A_t.size(0);
  const int64_t num_chunks = (length + chunk_length - 1) / chunk_length;
  check_sequence(grad_out, "grad_out", batch, length, dim, u.scalar_type());
  check_dense(grad_last_state, "grad_last_state", {batch, d_state, dim}, u.scalar_type());
  check_dense(chunk_states, "chunk_states", {batch, num_chunks, d_state, dim}, u.scalar_type());
  const int lanes = u.scalar_type() == at::kFloat ? kLanes<float> : kLanes<double>;
  const int64_t blocks = num_blocks(dim, lanes);
  // Enough items for every thread (two each, for balance); one group, no partials, once the batch suffices.
  const int64_t wanted_items = 2 * at::get_num_threads();
  const int64_t groups = std::max<int64_t>(1, std::min(blocks, (wanted_items + batch - 1) / batch));
  const auto options = u.options();
  auto grad_u = at::empty({batch, length, dim}, options);
  auto grad_delta = at::empty({batch, length, dim}, options);
  auto grad_z = at::empty({z.has_value() ? batch : 0, length, dim}, options);
  auto grad_B_groups = at::empty({groups, batch, length, d_state}, options);
  auto grad_C_groups = at::empty({groups, batch, length, d_state}, options);
  auto grad_A_t_batches = at::empty({batch, d_state, dim}, options);
  auto grad_D_batches = at::empty({D.has_value() ? batch : 0, dim}, options);
  auto grad_delta_bias_batches = at::empty({delta_bias.has_value() ? batch : 0, dim}, options);
  auto grad_initial_state = at::empty({batch, d_state, dim}, options);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_backward", [&] {
    const auto p = make_problem<scalar_t>(u, delta, A_t, B, C, D, z, delta_bias, std::nullopt, lengths,
                                          delta_softplus, chunk_length);
    ScanGradients<scalar_t> g;
    g.grad_out = sequence_of<scalar_t>(grad_out);
    g.grad_last_state = pointer_of<scalar_t>(grad_last_state);
    g.chunk_states = chunk_states.data_ptr<scalar_t>();
    g.grad_u = grad_u.data_ptr<scalar_t>();
    g.grad_delta = grad_delta.data_ptr<scalar_t>();
    g.grad_z = z.has_value() ? grad_z.data_ptr<scalar_t>() : nullptr;
    g.grad_B_groups = grad_B_groups.data_ptr<scalar_t>();
    g.grad_C_groups = grad_C_groups.data_ptr<scalar_t>();
    g.grad_A_t_batches = grad_A_t_batches.data_ptr<scalar_t>();
    g.grad_D_batches = D.has_value() ? grad_D_batches.data_ptr<scalar_t>() : nullptr;
    g.grad_delta_bias_batches = delta_bias.has_value() ? grad_delta_bias_batches.data_ptr<scalar_t>() : nullptr;
    g.grad_initial_state = grad_initial_state.data_ptr<scalar_t>();
    backward_kernel<scalar_t>(p, g, groups);
  });
  return {grad_u, grad_delta, grad_z, grad_A_t_batches.sum(0), grad_B_groups.sum(0), grad_C_groups.sum(0),
          grad_D_batches.sum(0), grad_delta_bias_batches.sum(0), grad_initial_state};
}


at::Tensor selective_state_update(const at::Tensor& state, const at::Tensor& x, const at::Tensor& dt,
                                  const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                  const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
                                  const std::optional<at::Tensor>& dt_bias, bool dt_softplus) {
  TORCH_CHECK(state.dim() == 3, "state must be (batch, dim, d_state), got ", state.sizes());
  const int64_t batch = state.size(0), dim = state.size(1), d_state = state.size(2);
  const auto dtype = state.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "state must be float32 or float64, got ", dtype);
  check_dense(state, "state", {batch, dim, d_state}, dtype);
  check_rows(x, "x", {batch, dim}, dtype);
  check_rows(dt, "dt", {batch, dim}, dtype);
  check_dense(A, "A", {dim, d_state}, dtype);
  check_rows(B, "B", {batch, d_state}, dtype);
  check_rows(C, "C", {batch, d_state}, dtype);
  check_dense(D, "D", {dim}, dtype);
  check_rows(z, "z", {batch, dim}, dtype);
  check_dense(dt_bias, "dt_bias", {dim}, dtype);
  auto y = at::empty({batch, dim}, x.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "selective_state_update", [&] {
    const StateUpdateRows<scalar_t> rows{rows_of<scalar_t>(x), rows_of<scalar_t>(dt), rows_of<scalar_t>(B),
                                         rows_of<scalar_t>(C), rows_of<scalar_t>(z)};
    state_update_kernel<scalar_t>(state.data_ptr<scalar_t>(), rows, A.data_ptr<scalar_t>(), pointer_of<scalar_t>(D),
                                  pointer_of<scalar_t>(dt_bias), dt_softplus, batch, dim, d_state,
                                  y.data_ptr<scalar_t>());
  });
  return y;
}

}  // namespace samba

TORCH_LIBRARY(espnet_samba, m) {
  m.def(
      "selective_scan_forward(Tensor u, Tensor delta, Tensor A_t, Tensor B, Tensor C, Tensor? D, Tensor? z, "
      "Tensor? delta_bias, Tensor? initial_state, Tensor? lengths, bool delta_softplus, int chunk_length, "
      "bool save_chunk_states) -> (Tensor, Tensor, Tensor)");
  m.def(
      "selective_scan_backward(Tensor grad_out, Tensor? grad_last_state, Tensor u, Tensor delta, Tensor A_t, "
      "Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? delta_bias, Tensor? lengths, Tensor chunk_states, "
      "bool delta_softplus, int chunk_length) -> Tensor[]");
  m.def(
      "selective_state_update(Tensor(a!) state, Tensor x, Tensor dt, Tensor A, Tensor B, Tensor C, Tensor? D, "
      "Tensor? z, Tensor? dt_bias, bool dt_softplus) -> Tensor");
}

TORCH_LIBRARY_IMPL(espnet_samba, CPU, m) {
  m.impl("selective_scan_forward", &samba::selective_scan_forward);
  m.impl("selective_scan_backward", &samba::selective_scan_backward);
  m.impl("selective_state_update", &samba::selective_state_update);
}
