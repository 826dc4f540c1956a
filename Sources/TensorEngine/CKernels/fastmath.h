// Vectorisable transcendental functions: the compiler turns loops over these into vector code for
// each build of a dispatched kernel (always inlined), which glibc's scalar expf/erff/tanhf would prevent.
#pragma once
#include <stdint.h>
#include <string.h>

// e^x within ~2 ulp (Cody-Waite reduction and Cephes' polynomial); 0 below -87.3.
static inline __attribute__((always_inline)) float uso_expf(float x) {
    float clamped = x > 88.7f ? 88.7f : (x < -87.3f ? -87.3f : x);
    float n = __builtin_rintf(clamped * 1.44269504088896341f);
    float r = clamped - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return x < -87.3f ? 0.0f : p * scale;
}

// 1 + tanh(x) = 2 / (1 + e^(-2x)), free of cancellation for negative x (GELU's left tail).
static inline __attribute__((always_inline)) float uso_one_plus_tanhf(float x) { return 2.0f / (1.0f + uso_expf(-2.0f * x)); }

// 1 + erf(x) by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), evaluated as
// erfc(-x) for negative x so the left tail keeps its relative accuracy.
static inline __attribute__((always_inline)) float uso_one_plus_erff(float x) {
    float ax = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float complement = poly * uso_expf(-ax * ax);   // erfc(|x|)
    return x < 0 ? complement : 2.0f - complement;
}
