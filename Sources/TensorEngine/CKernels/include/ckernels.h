// Hot loops of the tensor engine in C, so the compiler vectorises them (AVX-512 on this machine).
#pragma once
#include <stddef.h>
#include <stdint.h>

// Storage conversions. All rounding is round-to-nearest-even, as PyTorch's casts.
void uso_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void uso_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void uso_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void uso_f32_to_f16(const float *src, uint16_t *dst, size_t n);
// float8_e4m3fn: no infinities, 0x7f/0xff are NaN, max 448; out-of-range values become NaN (torch's cast).
void uso_f8e4m3_to_f32(const uint8_t *src, float *dst, size_t n);
void uso_f32_to_f8e4m3(const float *src, uint8_t *dst, size_t n);
// float8_e5m2: IEEE-like (inf and NaN), max 57344.
void uso_f8e5m2_to_f32(const uint8_t *src, float *dst, size_t n);
void uso_f32_to_f8e5m2(const float *src, uint8_t *dst, size_t n);
