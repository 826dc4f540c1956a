#include "ckernels.h"
#include <string.h>
#include <math.h>

static inline uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float float_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

void uso_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = float_of((uint32_t)src[i] << 16);
}

void uso_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = bits_of(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) { dst[i] = (uint16_t)((u >> 16) | 0x40); continue; } // quiet NaN
        u += 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(u >> 16);
    }
}

void uso_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    const _Float16 *h = (const _Float16 *)src;
    for (size_t i = 0; i < n; i++) dst[i] = (float)h[i];
}

void uso_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    _Float16 *h = (_Float16 *)dst;
    for (size_t i = 0; i < n; i++) h[i] = (_Float16)src[i];
}

// Generic small-float decode: sign, `ebits` exponent bits with bias, `mbits` mantissa bits.
static inline float decode_small(uint32_t v, int ebits, int mbits, int bias) {
    uint32_t sign = v >> (ebits + mbits), exp = (v >> mbits) & ((1u << ebits) - 1), man = v & ((1u << mbits) - 1);
    float mag;
    if (exp == 0) mag = ldexpf((float)man, 1 - bias - mbits);
    else mag = ldexpf((float)(man | (1u << mbits)), (int)exp - bias - mbits);
    return sign ? -mag : mag;
}

void uso_f8e4m3_to_f32(const uint8_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t v = src[i];
        dst[i] = ((v & 0x7f) == 0x7f) ? NAN : decode_small(v, 4, 3, 7);
    }
}

void uso_f8e5m2_to_f32(const uint8_t *src, float *dst, size_t n) {
    // e5m2 is the top byte of an IEEE half.
    for (size_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)src[i] << 8;
        uso_f16_to_f32(&h, &dst[i], 1);
    }
}

// Round-to-nearest-even encode of |x| into a float with `mbits` mantissa bits and exponent bias
// `bias`, returning the magnitude code; the caller handles sign, overflow and NaN.
static inline uint32_t encode_magnitude(float ax, int mbits, int bias) {
    int e;
    frexpf(ax, &e);                        // ax = f * 2^e, f in [0.5, 1)
    int exp = e - 1 + bias;                // biased exponent of the leading bit
    if (exp < 1) exp = 1;                  // subnormal range shares the minimum exponent's spacing
    float ulp = ldexpf(1.0f, exp - bias - mbits);
    float q = nearbyintf(ax / ulp);        // default rounding mode: to nearest even
    uint32_t code = (uint32_t)q;           // mantissa including the implicit bit
    // code may carry into the next binade; re-encode as exponent|mantissa
    if (code >= (2u << mbits)) { code >>= 1; exp += 1; }
    if (code < (1u << mbits)) return code; // subnormal (exp field 0)
    return ((uint32_t)exp << mbits) | (code & ((1u << mbits) - 1));
}

void uso_f32_to_f8e4m3(const float *src, uint8_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = src[i];
        uint8_t sign = signbit(x) ? 0x80 : 0;
        float ax = fabsf(x);
        if (isnan(x) || ax >= 464.0f) { dst[i] = sign | 0x7f; continue; } // 464 rounds past 448: NaN
        dst[i] = sign | (uint8_t)encode_magnitude(ax, 3, 7);
    }
}

void uso_f32_to_f8e5m2(const float *src, uint8_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = src[i];
        uint8_t sign = signbit(x) ? 0x80 : 0;
        float ax = fabsf(x);
        if (isnan(x)) { dst[i] = 0x7f; continue; }
        if (ax >= 61440.0f) { dst[i] = sign | 0x7c; continue; } // rounds to infinity
        dst[i] = sign | (uint8_t)encode_magnitude(ax, 2, 15);
    }
}
