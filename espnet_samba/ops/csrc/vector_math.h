// Element-wise math the CPU kernels apply lane by lane, written so that the compiler vectorises it.
//
// The float forms are polynomial (2^x from its Taylor series after range reduction, an atanh series for log1p
// on (0, 1]) built from multiplies, adds and bit moves only, so a loop over a block of lanes becomes SIMD code at
// -O3 for whatever vector width the target has. libm's expf/log1pf would keep those loops scalar without
// -ffast-math, which the kernels do not use. Both are accurate to a few float32 ulp (test_ops_cpu_kernels.py
// holds the kernels to the references). The double forms call libm: float64 is for gradient checks.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace samba {

// 2^x = 2^n * 2^f, n = round(x), |f| <= 1/2; 2^f from its Taylor series to f^6.
inline float fast_exp2(float x) {
  x = x < -126.0f ? -126.0f : x;  // ternaries, not fmin/fmax: those only vectorise under -ffast-math
  x = x > 127.0f ? 127.0f : x;
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
  const float shifted = x + round_magic;
  const float f = x - (shifted - round_magic);
  float p = 1.5403530393e-4f;
  p = p * f + 1.3333558146e-3f;
  p = p * f + 9.6181291076e-3f;
  p = p * f + 5.5504108665e-2f;
  p = p * f + 2.4022650696e-1f;
  p = p * f + 6.9314718056e-1f;
  p = p * f + 1.0f;
  int32_t shifted_bits;
  std::memcpy(&shifted_bits, &shifted, sizeof(shifted_bits));
  const int32_t scale_bits = (shifted_bits - 0x4B400000 + 127) << 23;  // (n + 127) << 23 = 2^n
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof(scale));
  return p * scale;
}

inline double fast_exp2(double x) { return std::exp2(x); }

constexpr double kLog2E = 1.4426950408889634;

inline float fast_exp(float x) { return fast_exp2(x * static_cast<float>(kLog2E)); }

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
