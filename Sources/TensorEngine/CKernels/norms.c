// Row-wise reductions: softmax, LayerNorm, RMSNorm, GroupNorm; and rotary embedding.
#include "rows.h"
#include "dispatch.h"
#include "fastmath.h"
#include <math.h>
#include <stdlib.h>

// Rows can be long (softmax over 5,000+ keys): a row that does not fit the stack scratch gets a
// heap buffer for the duration of the call.
typedef struct { float *in, *out; float stack_in[4096], stack_out[4096]; int heap; } row_buffers;

static int row_buffers_init(row_buffers *b, size_t n) {
    b->heap = n > 4096;
    if (!b->heap) { b->in = b->stack_in; b->out = b->stack_out; return 0; }
    b->in = malloc(n * sizeof(float));
    b->out = malloc(n * sizeof(float));
    return b->in && b->out ? 0 : -1;
}

static void row_buffers_free(row_buffers *b) {
    if (b->heap) { free(b->in); free(b->out); }
}

USO_DISPATCHED(uso_softmax_rows, (const void *x, int x_dtype, void *out, int out_dtype, size_t n, size_t start, size_t end),
               (x, x_dtype, out, out_dtype, n, start, end)) {
    row_buffers b;
    if (row_buffers_init(&b, n) != 0) { row_buffers_free(&b); return; }
    for (size_t row = start; row < end; row++) {
        const float *src = uso_load(x, x_dtype, row * n, n, b.in);
        float *dst = uso_target(out, out_dtype, row * n, b.out);
        float m = -INFINITY;
        for (size_t i = 0; i < n; i++) m = fmaxf(m, src[i]);
        float sum = 0;
        for (size_t i = 0; i < n; i++) { dst[i] = uso_expf(src[i] - m); sum += dst[i]; }
        float inv = 1.0f / sum;
        for (size_t i = 0; i < n; i++) dst[i] *= inv;
        uso_store(dst, out, out_dtype, row * n, n);
    }
    row_buffers_free(&b);
}

USO_DISPATCHED(uso_layernorm_rows, (const void *x, int x_dtype, void *out, int out_dtype, size_t n,
                                    const float *weight, const float *bias, float eps, size_t start, size_t end),
               (x, x_dtype, out, out_dtype, n, weight, bias, eps, start, end)) {
    row_buffers b;
    if (row_buffers_init(&b, n) != 0) { row_buffers_free(&b); return; }
    for (size_t row = start; row < end; row++) {
        const float *src = uso_load(x, x_dtype, row * n, n, b.in);
        float *dst = uso_target(out, out_dtype, row * n, b.out);
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += src[i];
        float mean = (float)(sum / (double)n);
        double squares = 0;
        for (size_t i = 0; i < n; i++) { float d = src[i] - mean; squares += (double)(d * d); }
        float inv = (float)(1.0 / sqrt(squares / (double)n + (double)eps));
        for (size_t i = 0; i < n; i++) {
            float y = (src[i] - mean) * inv;
            if (weight) y *= weight[i];
            if (bias) y += bias[i];
            dst[i] = y;
        }
        uso_store(dst, out, out_dtype, row * n, n);
    }
    row_buffers_free(&b);
}

// FLUX's QK-norm and T5's LayerNorm both round x·rsqrt(mean(x²)+eps) to the activation type
// before multiplying by the weight; for a non-F32 output we round at the same place.
USO_DISPATCHED(uso_rmsnorm_rows, (const void *x, int x_dtype, void *out, int out_dtype, size_t n,
                                  const float *weight, float eps, size_t start, size_t end),
               (x, x_dtype, out, out_dtype, n, weight, eps, start, end)) {
    row_buffers b;
    if (row_buffers_init(&b, n) != 0) { row_buffers_free(&b); return; }
    for (size_t row = start; row < end; row++) {
        const float *src = uso_load(x, x_dtype, row * n, n, b.in);
        float *dst = uso_target(out, out_dtype, row * n, b.out);
        double squares = 0;
        for (size_t i = 0; i < n; i++) squares += (double)(src[i] * src[i]);
        float inv = (float)(1.0 / sqrt(squares / (double)n + (double)eps));
        for (size_t i = 0; i < n; i++) dst[i] = src[i] * inv;
        if (weight) {
            if (out_dtype != USO_F32) {
                uso_store(dst, out, out_dtype, row * n, n);
                uso_load(out, out_dtype, row * n, n, dst);
            }
            for (size_t i = 0; i < n; i++) dst[i] *= weight[i];
        }
        uso_store(dst, out, out_dtype, row * n, n);
    }
    row_buffers_free(&b);
}

USO_DISPATCHED(uso_groupnorm, (const void *x, int x_dtype, void *out, int out_dtype, size_t plane, size_t channels_per_group,
                               const float *weight, const float *bias, float eps, size_t group_start, size_t group_end),
               (x, x_dtype, out, out_dtype, plane, channels_per_group, weight, bias, eps, group_start, group_end)) {
    float in_scratch[USO_ROW_CHUNK], out_scratch[USO_ROW_CHUNK];
    size_t group_size = plane * channels_per_group;
    for (size_t g = group_start; g < group_end; g++) {
        size_t base = g * group_size;
        double sum = 0, squares = 0;
        for (size_t i = 0; i < group_size; i += USO_ROW_CHUNK) {
            size_t n = group_size - i < USO_ROW_CHUNK ? group_size - i : USO_ROW_CHUNK;
            const float *src = uso_load(x, x_dtype, base + i, n, in_scratch);
            float part = 0;
            for (size_t j = 0; j < n; j++) part += src[j];
            sum += part;
        }
        float mean = (float)(sum / (double)group_size);
        for (size_t i = 0; i < group_size; i += USO_ROW_CHUNK) {
            size_t n = group_size - i < USO_ROW_CHUNK ? group_size - i : USO_ROW_CHUNK;
            const float *src = uso_load(x, x_dtype, base + i, n, in_scratch);
            float part = 0;
            for (size_t j = 0; j < n; j++) { float d = src[j] - mean; part += d * d; }
            squares += part;
        }
        float inv = (float)(1.0 / sqrt(squares / (double)group_size + (double)eps));
        for (size_t c = g * channels_per_group; c < (g + 1) * channels_per_group; c++) {
            float scale = inv * weight[c], shift = bias[c] - mean * scale;
            for (size_t i = 0; i < plane; i += USO_ROW_CHUNK) {
                size_t n = plane - i < USO_ROW_CHUNK ? plane - i : USO_ROW_CHUNK, index = c * plane + i;
                const float *src = uso_load(x, x_dtype, index, n, in_scratch);
                float *dst = uso_target(out, out_dtype, index, out_scratch);
                for (size_t j = 0; j < n; j++) dst[j] = src[j] * scale + shift;
                uso_store(dst, out, out_dtype, index, n);
            }
        }
    }
}

USO_DISPATCHED(uso_rope_rows, (const void *x, int x_dtype, void *out, int out_dtype, size_t heads, size_t dim,
                               const float *cos_table, const float *sin_table, size_t start, size_t end),
               (x, x_dtype, out, out_dtype, heads, dim, cos_table, sin_table, start, end)) {
    float in_scratch[USO_ROW_CHUNK], out_scratch[USO_ROW_CHUNK];
    size_t half = dim / 2;
    for (size_t row = start; row < end; row++) {
        size_t t = row / heads;
        const float *c = cos_table + t * half, *s = sin_table + t * half;
        for (size_t m0 = 0; m0 < half; m0 += USO_ROW_CHUNK / 2) {
            size_t pairs = half - m0 < USO_ROW_CHUNK / 2 ? half - m0 : USO_ROW_CHUNK / 2;
            size_t index = row * dim + 2 * m0;
            const float *src = uso_load(x, x_dtype, index, 2 * pairs, in_scratch);
            float *dst = uso_target(out, out_dtype, index, out_scratch);
            for (size_t m = 0; m < pairs; m++) {
                float x0 = src[2 * m], x1 = src[2 * m + 1], cs = c[m0 + m], sn = s[m0 + m];
                dst[2 * m] = cs * x0 - sn * x1;
                dst[2 * m + 1] = sn * x0 + cs * x1;
            }
            uso_store(dst, out, out_dtype, index, 2 * pairs);
        }
    }
}
