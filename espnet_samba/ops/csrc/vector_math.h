// Element-wise math the CPU kernels apply lane by lane, written so that the compiler vectorises it.
//
// The float forms are polynomial (Cephes' expf, an atanh series for log1p on (0, 1]) built from multiplies, adds
// and bit moves only, so a loop over a block of lanes becomes SIMD code at -O3 for whatever vector width the
// target has. libm's expf/log1pf would keep those loops scalar without -ffast-math, which the kernels do not use.
// Accuracy: fast_exp within 2 ulp on [-87, 88]; softplus within 2e-7 absolute. The double forms call libm: float64
// is the precision of gradient checks, not of training.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace samba {

inline float fast_exp(float x) {
  // exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln(2) / 2; ln 2 split in two for an exact n * ln 2.
  x = x < -87.33654f ? -87.33654f : x;  // ternaries, not fmin/fmax: those only vectorise under -ffast-math
  x = x > 88.72283f ? 88.72283f : x;
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
  const float shifted = x * 1.44269504088896341f + round_magic;
  const float n = shifted - round_magic;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float exp_r = p * r * r + r + 1.0f;
  int32_t shifted_bits;
  std::memcpy(&shifted_bits, &shifted, sizeof(shifted_bits));
  const int32_t scale_bits = (shifted_bits - 0x4B400000 + 127) << 23;  // (n + 127) << 23 = 2^n
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof(scale));
  return exp_r * scale;
}

inline double fast_exp(double x) { return std::exp(x); }

// log(1 + e) for e in [0, 1]: 2 atanh(s) with s = e / (2 + e) <= 1/3, the series to s^11.
inline float log1p_unit(float e) {
  const float s = e / (2.0f + e);
  const float s2 = s * s;
  float p = 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

inline float softplus(float x) { return (x > 0.0f ? x : 0.0f) + log1p_unit(fast_exp(-std::fabs(x))); }

inline double softplus(double x) { return (x > 0.0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + fast_exp(-x));
}

}  // namespace samba
