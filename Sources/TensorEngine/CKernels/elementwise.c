// Elementwise ops: activations, scalar arithmetic, broadcasting binary arithmetic.
#include "dispatch.h"
#include "rows.h"
#include "fastmath.h"

USO_INLINE void apply_unary(int op, float s, const float *x, float *y, size_t n) {
    switch (op) {
    case USO_SILU: for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + uso_expf(-x[i])); break;
    case USO_SIGMOID: for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + uso_expf(-x[i])); break;
    case USO_GELU_ERF:
        for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * uso_one_plus_erff(x[i] * 0.70710678118654752f);
        break;
    case USO_GELU_TANH:
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = 0.5f * v * uso_one_plus_tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v));
        }
        break;
    case USO_ADD_SCALAR: for (size_t i = 0; i < n; i++) y[i] = x[i] + s; break;
    case USO_SUB_SCALAR: for (size_t i = 0; i < n; i++) y[i] = x[i] - s; break;
    case USO_MUL_SCALAR: for (size_t i = 0; i < n; i++) y[i] = x[i] * s; break;
    case USO_DIV_SCALAR: for (size_t i = 0; i < n; i++) y[i] = x[i] / s; break;
    case USO_RSUB_SCALAR: for (size_t i = 0; i < n; i++) y[i] = s - x[i]; break;
    }
}

USO_DISPATCHED(uso_unary, (int op, float scalar, const void *x, int x_dtype, void *out, int out_dtype,
                           size_t start, size_t end), (op, scalar, x, x_dtype, out, out_dtype, start, end)) {
    float in_scratch[USO_ROW_CHUNK], out_scratch[USO_ROW_CHUNK];
    for (size_t i = start; i < end; i += USO_ROW_CHUNK) {
        size_t n = end - i < USO_ROW_CHUNK ? end - i : USO_ROW_CHUNK;
        const float *src = uso_load(x, x_dtype, i, n, in_scratch);
        float *dst = uso_target(out, out_dtype, i, out_scratch);
        apply_unary(op, scalar, src, dst, n);
        uso_store(dst, out, out_dtype, i, n);
    }
}

// y = a op b where a or b may be a single broadcast value (stride 0) along the run.
USO_INLINE void apply_binary(int op, const float *a, size_t as, const float *b, size_t bs, float *y, size_t n) {
#define RUN(expr) \
    if (as && bs) { for (size_t i = 0; i < n; i++) { float x = a[i], z = b[i]; y[i] = (expr); } } \
    else if (as) { float z = b[0]; for (size_t i = 0; i < n; i++) { float x = a[i]; y[i] = (expr); } } \
    else if (bs) { float x = a[0]; for (size_t i = 0; i < n; i++) { float z = b[i]; y[i] = (expr); } } \
    else { float x = a[0], z = b[0]; for (size_t i = 0; i < n; i++) y[i] = (expr); }
    switch (op) {
    case USO_ADD: RUN(x + z) break;
    case USO_SUB: RUN(x - z) break;
    case USO_MUL: RUN(x * z) break;
    case USO_DIV: RUN(x / z) break;
    }
#undef RUN
}

USO_DISPATCHED(uso_binary, (int op, const void *a, int a_dtype, const int64_t *a_strides,
                            const void *b, int b_dtype, const int64_t *b_strides,
                            void *out, int out_dtype, const int64_t *shape, int rank,
                            size_t row_start, size_t row_end),
               (op, a, a_dtype, a_strides, b, b_dtype, b_strides, out, out_dtype, shape, rank, row_start, row_end)) {
    float a_scratch[USO_ROW_CHUNK], b_scratch[USO_ROW_CHUNK], y_scratch[USO_ROW_CHUNK];
    size_t width = (size_t)shape[rank - 1];
    int64_t a_step = a_strides[rank - 1], b_step = b_strides[rank - 1];
    for (size_t row = row_start; row < row_end; row++) {
        // Offsets of this row in a and b from its index along the leading axes.
        int64_t a_offset = 0, b_offset = 0;
        size_t rest = row;
        for (int axis = rank - 2; axis >= 0; axis--) {
            size_t index = rest % (size_t)shape[axis];
            rest /= (size_t)shape[axis];
            a_offset += (int64_t)index * a_strides[axis];
            b_offset += (int64_t)index * b_strides[axis];
        }
        for (size_t col = 0; col < width; col += USO_ROW_CHUNK) {
            size_t n = width - col < USO_ROW_CHUNK ? width - col : USO_ROW_CHUNK;
            const float *pa = uso_load(a, a_dtype, (size_t)(a_offset + (int64_t)col * a_step), a_step ? n : 1, a_scratch);
            const float *pb = uso_load(b, b_dtype, (size_t)(b_offset + (int64_t)col * b_step), b_step ? n : 1, b_scratch);
            size_t index = row * width + col;
            float *y = uso_target(out, out_dtype, index, y_scratch);
            apply_binary(op, pa, (size_t)a_step, pb, (size_t)b_step, y, n);
            uso_store(y, out, out_dtype, index, n);
        }
    }
}
