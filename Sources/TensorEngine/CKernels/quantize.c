// W8A8 linear layers: int8 weights with one scale per output row, activations quantized per row
// (token) on the fly, products in exact int32 (gemm.c), then one pass that restores the scales.
// Per-row activation scales follow each token's own range, which matters in a DiT whose tokens'
// magnitudes differ by orders (text, image and reference streams share the blocks).
#include "dispatch.h"
#include <math.h>

// Rows are decoded to F32 through this much stack scratch at a time.
enum { CHUNK = 1024 };

USO_INLINE void row_range(const void *x, int dtype, int64_t n, float *low, float *high) {
    float scratch[CHUNK], lo = 0, hi = 0;   // the range always holds 0, so zero is exact
    size_t size = uso_dtype_size(dtype);
    for (int64_t j = 0; j < n; j += CHUNK) {
        int64_t count = n - j < CHUNK ? n - j : CHUNK;
        uso_convert((const char *)x + (size_t)j * size, dtype, scratch, USO_F32, (size_t)count);
        for (int64_t i = 0; i < count; i++) {
            lo = scratch[i] < lo ? scratch[i] : lo;
            hi = scratch[i] > hi ? scratch[i] : hi;
        }
    }
    *low = lo;
    *high = hi;
}

USO_DISPATCHED(uso_quantize_weight_rows, (const void *w, int w_dtype, int64_t in_features, int8_t *q, float *scales,
                                          int32_t *sums, int64_t start, int64_t end),
               (w, w_dtype, in_features, q, scales, sums, start, end)) {
    float scratch[CHUNK];
    size_t size = uso_dtype_size(w_dtype);
    for (int64_t r = start; r < end; r++) {
        const char *row = (const char *)w + (size_t)(r * in_features) * size;
        float lo, hi;
        row_range(row, w_dtype, in_features, &lo, &hi);
        float peak = fmaxf(-lo, hi);
        float scale = peak > 0 ? peak / 127.0f : 1.0f, inverse = 1.0f / scale;
        int32_t sum = 0;
        for (int64_t j = 0; j < in_features; j += CHUNK) {
            int64_t count = in_features - j < CHUNK ? in_features - j : CHUNK;
            uso_convert(row + (size_t)j * size, w_dtype, scratch, USO_F32, (size_t)count);
            for (int64_t i = 0; i < count; i++) {
                float v = nearbyintf(scratch[i] * inverse);
                int8_t code = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
                q[r * in_features + j + i] = code;
                sum += code;
            }
        }
        scales[r] = scale;
        sums[r] = sum;
    }
}

USO_DISPATCHED(uso_quantize_activation_rows, (const void *x, int x_dtype, int64_t in_features, uint8_t *q, float *scales,
                                              int32_t *zeros, int64_t start, int64_t end),
               (x, x_dtype, in_features, q, scales, zeros, start, end)) {
    float scratch[CHUNK];
    size_t size = uso_dtype_size(x_dtype);
    for (int64_t r = start; r < end; r++) {
        const char *row = (const char *)x + (size_t)(r * in_features) * size;
        float lo, hi;
        row_range(row, x_dtype, in_features, &lo, &hi);
        float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f, inverse = 1.0f / scale;
        float zero = nearbyintf(-lo * inverse);
        for (int64_t j = 0; j < in_features; j += CHUNK) {
            int64_t count = in_features - j < CHUNK ? in_features - j : CHUNK;
            uso_convert(row + (size_t)j * size, x_dtype, scratch, USO_F32, (size_t)count);
            uint8_t *out = q + r * in_features + j;
            for (int64_t i = 0; i < count; i++) {
                float v = nearbyintf(scratch[i] * inverse) + zero;
                out[i] = (uint8_t)(v > 255 ? 255 : v < 0 ? 0 : v);
            }
        }
        scales[r] = scale;
        zeros[r] = (int32_t)zero;
    }
}

USO_DISPATCHED(uso_dequantize_rows, (const int32_t *acc, int64_t n, const float *x_scales, const int32_t *x_zeros,
                                     const float *w_scales, const int32_t *w_sums, const float *bias, void *y, int y_dtype,
                                     int64_t y_row_stride, int64_t start, int64_t end),
               (acc, n, x_scales, x_zeros, w_scales, w_sums, bias, y, y_dtype, y_row_stride, start, end)) {
    float scratch[CHUNK];
    size_t size = uso_dtype_size(y_dtype);
    for (int64_t r = start; r < end; r++) {
        const int32_t *a = acc + r * n;
        float xs = x_scales[r];
        int32_t zero = x_zeros[r];
        for (int64_t j = 0; j < n; j += CHUNK) {
            int64_t count = n - j < CHUNK ? n - j : CHUNK;
            for (int64_t i = 0; i < count; i++) {
                // acc − zero·Σq is the exact integer product of the centred codes.
                int32_t centred = a[j + i] - zero * w_sums[j + i];
                scratch[i] = (float)centred * (xs * w_scales[j + i]) + (bias ? bias[j + i] : 0.0f);
            }
            uso_convert(scratch, USO_F32, (char *)y + (size_t)(r * y_row_stride + j) * size, y_dtype, (size_t)count);
        }
    }
}
