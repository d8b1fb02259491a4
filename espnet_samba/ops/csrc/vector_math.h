// Element-wise math the CPU kernels apply lane by lane, written so that the compiler vectorises it.
//
// The float forms are polynomial (2^x from a fitted polynomial after range reduction, an atanh series for log1p
// on (0, 1]) built from multiplies, adds and bit moves only, so a loop over a block of lanes becomes SIMD code at
// -O3 for whatever vector width the target has. libm's expf/log1pf would keep those loops scalar without
// -ffast-math, which the kernels do not use. Both are accurate to a few float32 ulp (test_ops_cpu_kernels.py
// holds the kernels to the references). The double forms call libm: float64 is for gradient checks.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace samba {

// 2^f for |f| <= 1/2: a degree-5 polynomial fitted for least maximum relative error, as accurate in float32 as
// the degree-6 Taylor series it replaced, with one multiply-add fewer. Coefficients of f^0 .. f^5.
constexpr float kExp2Poly[6] = {1.0000001192e+0f, 6.9314694405e-1f, 2.4022120237e-1f,
                                5.5507130921e-2f, 9.6755409613e-3f, 1.3276471291e-3f};

inline float exp2_fraction(float f) {
  float p = kExp2Poly[5];
  for (int i = 4; i >= 0; --i) p = p * f + kExp2Poly[i];  // Horner
  return p;
}

// 2^x = 2^n * 2^f, n = round(x), |f| <= 1/2.
inline float fast_exp2(float x) {
  x = x < -126.0f ? -126.0f : x;  // ternaries, not fmin/fmax: those only vectorise under -ffast-math
  x = x > 127.0f ? 127.0f : x;
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
  const float shifted = x + round_magic;
  const float p = exp2_fraction(x - (shifted - round_magic));
  int32_t shifted_bits;
  std::memcpy(&shifted_bits, &shifted, sizeof(shifted_bits));
  const int32_t scale_bits = (shifted_bits - 0x4B400000 + 127) << 23;  // (n + 127) << 23 = 2^n
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof(scale));
  return p * scale;
}

#if defined(__AVX512F__)
// fast_exp2 of 16 lanes in AVX-512: rounding (vrndscaleps) and the scaling by 2^n (vscalefps) are one
// instruction each, where the portable form above needs six for them and its clamps (the lower clamp stays: it
// keeps results out of the denormals, as above; vscalefps saturates at the top by itself). Always inlined, as
// are the other vector helpers: a call from a loop that keeps its state in vector registers would spill them.
__attribute__((always_inline)) inline __m512 fast_exp2_avx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(kExp2Poly[5]);
  for (int i = 4; i >= 0; --i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[i]));  // exp2_fraction's Horner
  return _mm512_scalef_ps(p, n);
}
#endif

inline double fast_exp2(double x) { return std::exp2(x); }

constexpr double kLog2E = 1.4426950408889634;

inline float fast_exp(float x) { return fast_exp2(x * static_cast<float>(kLog2E)); }

inline double fast_exp(double x) { return std::exp(x); }

// atanh(s) / s to s^10 as a polynomial in s^2: log(1 + e) = 2 s atanh_series(s^2) with s = e / (2 + e).
inline float atanh_series(float s2) {
  float p = 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  return p * s2 + 1.0f;
}

// log(1 + e) for e in [0, 1]: 2 atanh(s) with s = e / (2 + e) <= 1/3, the series to s^11.
inline float log1p_unit(float e) {
  const float s = e / (2.0f + e);
  return 2.0f * s * atanh_series(s * s);
}

// max(x, 0) + log1p(exp(-|x|)), the series' last product and the addition in one explicit multiply-add, so that
// softplus_avx512 gives the same bits whatever the compiler contracts.
inline float softplus(float x) {
  const float e = fast_exp(-std::fabs(x));
  const float s = e / (2.0f + e);
  return std::fma(2.0f * s, atanh_series(s * s), x > 0.0f ? x : 0.0f);
}

inline double softplus(double x) { return (x > 0.0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + fast_exp(-x));
}

#if defined(__AVX512F__)
// sigmoid(float) and softplus(float) of 16 lanes with the AVX-512 rounding and scaling instructions, equal to
// them lane for lane: the same clamps, rounding to nearest, polynomials, divisions and roundings in the same
// order (the clamps' operand order keeps a NaN a NaN, as the ternaries do). For the register-resident scan's
// frame loop, where the compiler would otherwise vectorise the portable fast_exp2 with more instructions;
// test_ops_cpu_kernels.py holds that scan to the generic one, which uses the portable forms, bit for bit.
__attribute__((always_inline)) inline __m512 fast_exp_avx512_as_portable(__m512 x) {
  x = _mm512_mul_ps(x, _mm512_set1_ps(static_cast<float>(kLog2E)));
  x = _mm512_max_ps(_mm512_set1_ps(-126.0f), x);
  x = _mm512_min_ps(_mm512_set1_ps(127.0f), x);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(kExp2Poly[5]);
  for (int i = 4; i >= 0; --i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[i]));
  return _mm512_scalef_ps(p, n);
}

__attribute__((always_inline)) inline __m512 sigmoid_avx512(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = fast_exp_avx512_as_portable(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

__attribute__((always_inline)) inline __m512 softplus_avx512(__m512 x) {
  const __m512 magnitude = _mm512_abs_ps(x);
  const __m512 e = fast_exp_avx512_as_portable(_mm512_sub_ps(_mm512_setzero_ps(), magnitude));
  const __m512 s = _mm512_div_ps(e, _mm512_add_ps(_mm512_set1_ps(2.0f), e));
  const __m512 s2 = _mm512_mul_ps(s, s);
  __m512 p = _mm512_set1_ps(1.0f / 11.0f);  // atanh_series
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 9.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 7.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 5.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 3.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f));
  return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(2.0f), s), p, _mm512_max_ps(_mm512_setzero_ps(), x));
}
#endif

}  // namespace samba
