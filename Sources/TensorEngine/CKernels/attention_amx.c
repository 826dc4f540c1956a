// BF16 attention on AMX tiles (Sapphire Rapids and later). Same blocking and numerics as the
// oneDNN path in attention.c (bf16 products with f32 accumulation, scores scaled in f32, online
// softmax, probabilities rounded to bf16 before P·V), but the products are inlined tile
// instructions: the small per-block GEMMs there cost more in call overhead than in arithmetic.
//
// Each worker packs the keys and values of the head it is on once (repacking only when its range
// of items moves to the next head) into the tile layouts below; query blocks are copied into a
// zero-padded buffer, so any D, Dv and sequence length work (padding is zeros, masked out of
// the softmax).
#if defined(__x86_64__)
#include "amx.h"
#include "fastmath.h"
#include "rows.h"
#include <math.h>
#include <stdlib.h>

enum {
    QB = USO_ATTENTION_QUERY_BLOCK,
    ROWS = 64, KEYS = 256,   // query rows and keys per inner block: scores and probabilities stay in cache
};

// Values as B = V for P·v: tile (column group w of 16, step u of 32 keys) holds, at row p and
// column c, the pair (V[32u+2p][16w+c], V[32u+2p+1][16w+c]). Tiles of one column group are
// consecutive in u. Missing keys and columns are zero.
static void pack_values(const uint16_t *v, int64_t heads, int64_t dv, int64_t h, int64_t lk, int64_t dv_pad,
                        int64_t lk_pad, uint16_t *packed) {
    int64_t steps = lk_pad / USO_AMX_STEP;
    for (int64_t key = 0; key < lk_pad; key += 2) {
        const uint16_t *even = v + (key * heads + h) * dv, *odd = even + heads * dv;
        int64_t pair = key / 2;   // pair p of step u is row 16·u + p of that column group's tiles
        for (int64_t c = 0; c < dv_pad; c++) {
            uint16_t *slot = packed + (c / 16) * steps * USO_AMX_TILE + pair * 32 + (c % 16) * 2;
            slot[0] = key < lk && c < dv ? even[c] : 0;
            slot[1] = key + 1 < lk && c < dv ? odd[c] : 0;
        }
    }
}

// e^x for 16 lanes, the same reduction and polynomial as uso_expf (fastmath.h).
USO_AMX_TARGET static inline __m512 exp16(__m512 x) {
    __m512 clamped = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), clamped);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 result = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(underflow, result, _mm512_setzero_ps());
}

static __mmask16 lanes(int64_t count) { return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1); }

// One row of the online softmax over a key block: scale (and bias) the scores, update the running
// maximum and sum, rescale the output row, and leave the block's probabilities as bf16 (zero past
// `valid` up to `padded`, a multiple of 32). Explicit AVX-512: this is most of the non-tile work.
USO_AMX_TARGET static void softmax_step(float *s, const float *bias, int64_t valid, int64_t padded, float scale,
                                    float *row_max, float *row_sum, uint16_t *probabilities, float *out, int64_t dv) {
    __m512 scale16 = _mm512_set1_ps(scale), max16 = _mm512_set1_ps(*row_max);
    for (int64_t j = 0; j < valid; j += 16) {
        __mmask16 mask = lanes(valid - j);
        __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, s + j), scale16);
        if (bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, bias + j));
        _mm512_mask_storeu_ps(s + j, mask, x);
        max16 = _mm512_mask_max_ps(max16, mask, max16, x);
    }
    float m = _mm512_reduce_max_ps(max16);
    if (m == -INFINITY) {   // nothing visible yet in this row
        memset(probabilities, 0, (size_t)padded * sizeof(uint16_t));
        return;
    }
    __m512 m16 = _mm512_set1_ps(m), sum16 = _mm512_setzero_ps();
    for (int64_t j = 0; j < padded; j += 16) {
        __mmask16 mask = j < valid ? lanes(valid - j) : 0;
        __m512 e = _mm512_maskz_mov_ps(mask, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + j), m16)));
        sum16 = _mm512_add_ps(sum16, e);
        _mm256_storeu_si256((__m256i *)(probabilities + j), (__m256i)_mm512_cvtneps_pbh(e));
    }
    float correction = uso_expf(*row_max - m);
    *row_sum = *row_sum * correction + _mm512_reduce_add_ps(sum16);
    *row_max = m;
    if (correction != 1.0f)
        for (int64_t c = 0; c < dv; c++) out[c] *= correction;
}

// MARK: attention

USO_AMX_TARGET int uso_attention_items_amx(const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                           const void *bias, int bias_dtype, void *out, int out_dtype,
                                           int64_t lq, int64_t lk, int64_t heads, int64_t d, int64_t dv,
                                           float scale, int causal, int64_t item_start, int64_t item_end) {
    int64_t blocks = (lq + QB - 1) / QB;
    int64_t d_pad = uso_round_up(d, USO_AMX_STEP), dv_pad = uso_round_up(dv, USO_AMX_STEP);
    int64_t lk_pad = uso_round_up(lk, USO_AMX_STEP);
    size_t pack_k = (size_t)(lk_pad * d_pad), pack_v = (size_t)(lk_pad * dv_pad);
    // bf16: packed keys, packed values, query rows, probabilities; f32: scores, output, softmax state.
    size_t halves = pack_k + pack_v + (size_t)(ROWS * d_pad) + (size_t)(ROWS * KEYS);
    size_t floats = (size_t)(ROWS * KEYS + ROWS * dv_pad + 2 * ROWS + KEYS);
    uint16_t *packed_keys = calloc(halves * sizeof(uint16_t) + floats * sizeof(float), 1);
    if (!packed_keys) return 1;
    uint16_t *packed_values = packed_keys + pack_k, *query = packed_values + pack_v;
    uint16_t *probabilities = query + ROWS * d_pad;
    float *scores = (float *)(probabilities + ROWS * KEYS), *acc = scores + ROWS * KEYS;
    float *row_max = acc + ROWS * dv_pad, *row_sum = row_max + ROWS, *bias_row = row_sum + ROWS;
    int64_t packed_head = -1, d_steps = d_pad / USO_AMX_STEP, v_steps = lk_pad / USO_AMX_STEP;
    uso_amx_configure();

    for (int64_t item = item_start; item < item_end; item++) {
        int64_t h = item / blocks, first_row = (item % blocks) * QB;
        int64_t last_row = first_row + QB < lq ? first_row + QB : lq;   // exclusive
        if (h != packed_head) {
            uso_amx_pack_rows(k + h * d, heads * d, lk, d, lk_pad, d_pad, packed_keys);
            pack_values(v, heads, dv, h, lk, dv_pad, lk_pad, packed_values);
            packed_head = h;
        }
        // The item's query rows, ROWS at a time: scores and probabilities then stay in cache.
        for (int64_t i0 = first_row; i0 < last_row; i0 += ROWS) {
            int64_t bq = last_row - i0 < ROWS ? last_row - i0 : ROWS;
            int64_t bq_pad = uso_round_up(bq, USO_AMX_STEP);
            for (int64_t r = 0; r < bq_pad; r++) {
                uint16_t *row = query + r * d_pad;
                if (r < bq) memcpy(row, q + ((i0 + r) * heads + h) * d, (size_t)d * sizeof(uint16_t));
                memset(row + (r < bq ? d : 0), 0, (size_t)(r < bq ? d_pad - d : d_pad) * sizeof(uint16_t));
            }
            int64_t key_end = causal ? (i0 + bq < lk ? i0 + bq : lk) : lk;
            for (int64_t r = 0; r < bq; r++) { row_max[r] = -INFINITY; row_sum[r] = 0; }
            memset(acc, 0, sizeof(float) * (size_t)(bq_pad * dv_pad));

            for (int64_t j0 = 0; j0 < key_end; j0 += KEYS) {
                int64_t bk = key_end - j0 < KEYS ? key_end - j0 : KEYS, bk_pad = uso_round_up(bk, USO_AMX_STEP);
                // scores[bq_pad, bk_pad] = query · keysᵀ
                for (int64_t j = 0; j < bk_pad; j += 32)   // a pair of key tiles, reused by every query row
                    for (int64_t r = 0; r < bq_pad; r += 32) {
                        const uint16_t *b0 = packed_keys + (j0 + j) / 16 * d_steps * USO_AMX_TILE;
                        uso_amx_block(uso_amx_row_major(query + r * d_pad, (size_t)d_pad), b0, b0 + d_steps * USO_AMX_TILE, d_steps,
                                   scores + r * KEYS + j, KEYS, 0);
                    }
                for (int64_t r = 0; r < bq; r++) {
                    int64_t valid = bk;
                    if (causal) {   // query i sees keys j <= i
                        int64_t limit = i0 + r + 1 - j0;
                        valid = limit < 0 ? 0 : (limit < bk ? limit : bk);
                    }
                    const float *b = bias ? uso_load(bias, bias_dtype, (size_t)((h * lq + i0 + r) * lk + j0),
                                                     (size_t)valid, bias_row) : NULL;
                    softmax_step(scores + r * KEYS, b, valid, bk_pad, scale, row_max + r, row_sum + r,
                                 probabilities + r * KEYS, acc + r * dv_pad, dv);
                }
                // acc[bq_pad, dv_pad] += probabilities · values
                for (int64_t c = 0; c < dv_pad; c += 32)
                    for (int64_t r = 0; r < bq_pad; r += 32) {
                        const uint16_t *b0 = packed_values + ((c / 16) * v_steps + j0 / USO_AMX_STEP) * USO_AMX_TILE;
                        uso_amx_block(uso_amx_row_major(probabilities + r * KEYS, KEYS), b0, b0 + v_steps * USO_AMX_TILE, bk_pad / USO_AMX_STEP,
                                   acc + r * dv_pad + c, (size_t)dv_pad, 1);
                    }
            }
            for (int64_t r = 0; r < bq; r++) {
                float *o = acc + r * dv_pad, inv = 1.0f / row_sum[r];
                for (int64_t c = 0; c < dv; c++) o[c] *= inv;
                uso_convert(o, USO_F32, (char *)out + (size_t)(((i0 + r) * heads + h) * dv) * uso_dtype_size(out_dtype),
                            out_dtype, (size_t)dv);
            }
        }
    }
    _tile_release();
    free(packed_keys);
    return 0;
}
#endif
