// Flash-style attention: for one head and a block of query rows, walk the keys in blocks, keeping
// a running row maximum, running sum and rescaled output (online softmax). Scores never exist for
// more than one key block. Callers run work items in parallel, so the products inside run
// single-threaded: BF16 on oneDNN (bf16 inputs, f32 accumulation; the probabilities are rounded
// to BF16 before P·V, as PyTorch's CPU flash attention does), or decoded to F32 for OpenBLAS where
// oneDNN has no bf16 matmul (same numerics); F32 on OpenBLAS sgemm. Where the
// processor has AMX, BF16 runs instead on tiles inline (attention_amx.c), same numerics.
#include "amx.h"
#include "dispatch.h"
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

typedef struct {
    const void *q, *k, *v;
    int dtype;            // F32, or BF16 (native, or decoded like the other types, which are decoded to F32)
    int native_bf16;      // BF16 products as BF16 where oneDNN runs them; elsewhere the inputs are decoded
                          // (what the widening GEMM would do, without a copy per product), same numerics
    int64_t heads, d, dv;
    const float *q_rows; int64_t ldq;     // the work item's query rows as F32 (decoded path)
    float *q_block, *k_block, *v_block;   // F32 decode scratch
    uint16_t *probabilities;              // BF16 copy of a score block
    float *product;                       // P·V of one key block (BF16 path)
} products;

// scores[bq, bk] (leading dimension KB) = q rows · k rowsᵀ, times `scale` (applied here for F32,
// by the caller for BF16).
static int score_block(products *p, int64_t h, int64_t i0, int64_t bq, int64_t j0, int64_t bk, float scale,
                       float *scores) {
    if (p->native_bf16) {
        const uint16_t *q = (const uint16_t *)p->q + (i0 * p->heads + h) * p->d;
        const uint16_t *k = (const uint16_t *)p->k + (j0 * p->heads + h) * p->d;
        return uso_gemm(bq, bk, p->d, q, USO_BF16, p->heads * p->d, 1, k, USO_BF16, 1, p->heads * p->d,
                        scores, USO_F32, KB, NULL);
    }
    int64_t ldk;
    const float *k = head_rows(p->k, p->dtype, p->heads, p->d, h, j0, bk, p->k_block, &ldk);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)bq, (blasint)bk, (blasint)p->d, scale,
                p->q_rows, (blasint)p->ldq, k, (blasint)ldk, 0.0f, scores, KB);
    return 0;
}

// acc[bq, dv] += probabilities[bq, bk] · v rows.
static int accumulate_values(products *p, int64_t h, int64_t j0, int64_t bq, int64_t bk, float *scores, float *acc) {
    if (p->native_bf16) {
        for (int64_t r = 0; r < bq; r++) uso_f32_to_bf16(scores + r * KB, p->probabilities + r * KB, (size_t)bk);
        const uint16_t *v = (const uint16_t *)p->v + (j0 * p->heads + h) * p->dv;
        int status = uso_gemm(bq, p->dv, bk, p->probabilities, USO_BF16, KB, 1, v, USO_BF16, p->heads * p->dv, 1,
                              p->product, USO_F32, p->dv, NULL);
        for (int64_t i = 0; i < bq * p->dv; i++) acc[i] += p->product[i];
        return status;
    }
    if (p->dtype == USO_BF16)   // decoded BF16: probabilities rounded to BF16, as on the native path
        for (int64_t r = 0; r < bq; r++) {
            uso_f32_to_bf16(scores + r * KB, p->probabilities, (size_t)bk);
            uso_bf16_to_f32(p->probabilities, scores + r * KB, (size_t)bk);
        }
    int64_t ldv;
    const float *v = head_rows(p->v, p->dtype, p->heads, p->dv, h, j0, bk, p->v_block, &ldv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)bq, (blasint)p->dv, (blasint)bk, 1.0f,
                scores, KB, v, (blasint)ldv, 1.0f, acc, (blasint)p->dv);
    return 0;
}

// One row of the online softmax over a key block, as softmax_step in attention_amx.c: scale (unless
// 1) and bias the `valid` scores, update the running maximum and sum, rescale the output row, and
// leave the probabilities in s (zero past `valid` up to bk).
static void softmax_row(float *s, const float *bias, int64_t valid, int64_t bk, float scale, float *row_max,
                        float *row_sum, float *out, int64_t dv);
USO_DISPATCHED(softmax_row, (float *s, const float *bias, int64_t valid, int64_t bk, float scale, float *row_max,
                             float *row_sum, float *out, int64_t dv),
               (s, bias, valid, bk, scale, row_max, row_sum, out, dv)) {
    if (scale != 1.0f) for (int64_t j = 0; j < valid; j++) s[j] *= scale;
    if (bias) for (int64_t j = 0; j < valid; j++) s[j] += bias[j];
    float m = *row_max;
    for (int64_t j = 0; j < valid; j++) m = fmaxf(m, s[j]);
    if (m == -INFINITY) {   // nothing visible yet in this row
        for (int64_t j = 0; j < bk; j++) s[j] = 0;
        return;
    }
    float correction = uso_expf(*row_max - m), sum = 0;
    for (int64_t j = 0; j < valid; j++) { s[j] = uso_expf(s[j] - m); sum += s[j]; }
    for (int64_t j = valid; j < bk; j++) s[j] = 0;
    *row_sum = *row_sum * correction + sum;
    *row_max = m;
    if (correction != 1.0f)
        for (int64_t c = 0; c < dv; c++) out[c] *= correction;
}

int uso_attention_items(const void *q, const void *k, const void *v, int in_dtype,
                        const void *bias, int bias_dtype, void *out, int out_dtype,
                        int64_t lq, int64_t lk, int64_t heads, int64_t d, int64_t dv,
                        float scale, int causal, int64_t item_start, int64_t item_end) {
#if defined(__x86_64__)
    if (in_dtype == USO_BF16 && uso_amx_available())
        return uso_attention_items_amx(q, k, v, bias, bias_dtype, out, out_dtype, lq, lk, heads, d, dv, scale, causal,
                                       item_start, item_end);
#endif
    int64_t blocks = (lq + QB - 1) / QB;
    size_t floats = (size_t)(QB * d + KB * d + KB * dv + QB * KB + 2 * QB * dv + 2 * QB + KB + QB * KB / 2);
    float *buffer = malloc(sizeof(float) * floats);
    if (!buffer) return 1;
    products p = {q, k, v, in_dtype, in_dtype == USO_BF16 && uso_bf16_gemm_path() != 2, heads, d, dv};
    p.q_block = buffer;
    p.k_block = p.q_block + QB * d;
    p.v_block = p.k_block + KB * d;
    float *scores = p.v_block + KB * dv, *acc = scores + QB * KB;
    p.product = acc + QB * dv;
    float *row_max = p.product + QB * dv, *row_sum = row_max + QB, *bias_row = row_sum + QB;
    p.probabilities = (uint16_t *)(bias_row + KB);
    float post_scale = p.native_bf16 ? scale : 1.0f;
    int saved_threads = uso_gemm_threads(), status = 0;
    uso_set_gemm_threads(1);

    for (int64_t item = item_start; item < item_end && status == 0; item++) {
        int64_t h = item / blocks, i0 = (item % blocks) * QB;
        int64_t bq = lq - i0 < QB ? lq - i0 : QB;
        int64_t key_end = causal ? (i0 + bq < lk ? i0 + bq : lk) : lk;
        for (int64_t r = 0; r < bq; r++) { row_max[r] = -INFINITY; row_sum[r] = 0; }
        memset(acc, 0, sizeof(float) * (size_t)(bq * dv));
        if (!p.native_bf16) p.q_rows = head_rows(q, in_dtype, heads, d, h, i0, bq, p.q_block, &p.ldq);

        for (int64_t j0 = 0; j0 < key_end && status == 0; j0 += KB) {
            int64_t bk = key_end - j0 < KB ? key_end - j0 : KB;
            status = score_block(&p, h, i0, bq, j0, bk, scale, scores);
            for (int64_t r = 0; r < bq; r++) {
                int64_t valid = bk;
                if (causal) {   // query i sees keys j <= i
                    int64_t limit = i0 + r + 1 - j0;
                    valid = limit < 0 ? 0 : (limit < bk ? limit : bk);
                }
                const float *b = bias ? uso_load(bias, bias_dtype, (size_t)((h * lq + i0 + r) * lk + j0), (size_t)valid,
                                                 bias_row) : NULL;
                softmax_row(scores + r * KB, b, valid, bk, post_scale, row_max + r, row_sum + r, acc + r * dv, dv);
            }
            if (status == 0) status = accumulate_values(&p, h, j0, bq, bk, scores, acc);
        }
        for (int64_t r = 0; r < bq && status == 0; r++) {
            float *o = acc + r * dv, inv = 1.0f / row_sum[r];
            for (int64_t c = 0; c < dv; c++) o[c] *= inv;
            uso_convert(o, USO_F32, (char *)out + (size_t)(((i0 + r) * heads + h) * dv) * uso_dtype_size(out_dtype),
                        out_dtype, (size_t)dv);
        }
    }
    uso_set_gemm_threads(saved_threads);
    free(buffer);
    return status;
}
