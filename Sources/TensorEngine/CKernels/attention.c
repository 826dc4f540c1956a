// Flash-style attention: for one head and a block of query rows, walk the keys in blocks, keeping
// a running row maximum, running sum and rescaled output (online softmax). Scores never exist for
// more than one key block. Products run on single-threaded sgemm; callers run items in parallel.
#include "rows.h"
#include "fastmath.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

enum { QB = USO_ATTENTION_QUERY_BLOCK, KB = USO_ATTENTION_KEY_BLOCK };

// Rows [start, start+count) of head `h` of x [L, H, width] as F32: in place when stored F32
// (leading dimension H·width), else decoded into `scratch` (leading dimension width).
static const float *head_rows(const void *x, int dtype, int64_t heads, int64_t width, int64_t h,
                              int64_t start, int64_t count, float *scratch, int64_t *ld) {
    if (dtype == USO_F32) {
        *ld = heads * width;
        return (const float *)x + (start * heads + h) * width;
    }
    for (int64_t r = 0; r < count; r++)
        uso_convert((const char *)x + (size_t)(((start + r) * heads + h) * width) * uso_dtype_size(dtype), dtype,
                    scratch + r * width, USO_F32, (size_t)width);
    *ld = width;
    return scratch;
}

int uso_attention_items(const void *q, const void *k, const void *v, int in_dtype,
                        const void *bias, int bias_dtype, void *out, int out_dtype,
                        int64_t lq, int64_t lk, int64_t heads, int64_t d, int64_t dv,
                        float scale, int causal, int64_t item_start, int64_t item_end) {
    int64_t blocks = (lq + QB - 1) / QB;
    float *buffer = malloc(sizeof(float) * (size_t)(QB * d + KB * d + KB * dv + QB * KB + QB * dv + 2 * QB + KB));
    if (!buffer) return 1;
    float *q_block = buffer, *k_block = q_block + QB * d, *v_block = k_block + KB * d;
    float *scores = v_block + KB * dv, *acc = scores + QB * KB;
    float *row_max = acc + QB * dv, *row_sum = row_max + QB, *bias_row = row_sum + QB;

    for (int64_t item = item_start; item < item_end; item++) {
        int64_t h = item / blocks, i0 = (item % blocks) * QB;
        int64_t bq = lq - i0 < QB ? lq - i0 : QB;
        int64_t key_end = causal ? (i0 + bq < lk ? i0 + bq : lk) : lk;
        int64_t ldq, ldk, ldv;
        const float *qp = head_rows(q, in_dtype, heads, d, h, i0, bq, q_block, &ldq);
        for (int64_t r = 0; r < bq; r++) { row_max[r] = -INFINITY; row_sum[r] = 0; }
        memset(acc, 0, sizeof(float) * (size_t)(bq * dv));

        for (int64_t j0 = 0; j0 < key_end; j0 += KB) {
            int64_t bk = key_end - j0 < KB ? key_end - j0 : KB;
            const float *kp = head_rows(k, in_dtype, heads, d, h, j0, bk, k_block, &ldk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)bq, (blasint)bk, (blasint)d, scale,
                        qp, (blasint)ldq, kp, (blasint)ldk, 0.0f, scores, KB);
            for (int64_t r = 0; r < bq; r++) {
                float *s = scores + r * KB;
                int64_t valid = bk;
                if (causal) {   // query i sees keys j <= i
                    int64_t limit = i0 + r + 1 - j0;
                    valid = limit < 0 ? 0 : (limit < bk ? limit : bk);
                }
                if (bias) {
                    const float *b = uso_load(bias, bias_dtype, (size_t)((h * lq + i0 + r) * lk + j0), (size_t)valid, bias_row);
                    for (int64_t j = 0; j < valid; j++) s[j] += b[j];
                }
                float m = row_max[r];
                for (int64_t j = 0; j < valid; j++) m = s[j] > m ? s[j] : m;
                if (m == -INFINITY) {   // nothing visible yet in this row
                    for (int64_t j = 0; j < bk; j++) s[j] = 0;
                    continue;
                }
                float correction = uso_expf(row_max[r] - m), sum = 0;
                for (int64_t j = 0; j < valid; j++) { s[j] = uso_expf(s[j] - m); sum += s[j]; }
                for (int64_t j = valid; j < bk; j++) s[j] = 0;
                row_sum[r] = row_sum[r] * correction + sum;
                row_max[r] = m;
                if (correction != 1.0f) {
                    float *o = acc + r * dv;
                    for (int64_t c = 0; c < dv; c++) o[c] *= correction;
                }
            }
            const float *vp = head_rows(v, in_dtype, heads, dv, h, j0, bk, v_block, &ldv);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)bq, (blasint)dv, (blasint)bk, 1.0f,
                        scores, KB, vp, (blasint)ldv, 1.0f, acc, (blasint)dv);
        }
        for (int64_t r = 0; r < bq; r++) {
            float *o = acc + r * dv, inv = 1.0f / row_sum[r];
            for (int64_t c = 0; c < dv; c++) o[c] *= inv;
            uso_convert(o, USO_F32, (char *)out + (size_t)(((i0 + r) * heads + h) * dv) * uso_dtype_size(out_dtype),
                        out_dtype, (size_t)dv);
        }
    }
    free(buffer);
    return 0;
}
