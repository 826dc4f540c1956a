// AMX (tile) building blocks for the BF16 kernels (Sapphire Rapids and later). Functions carry their own target attribute, so the file compiles on any x86-64; callers
// check uso_amx_available() before using them. Other architectures get only the availability
// functions (AMX is never available there).
#pragma once
#include "ckernels.h"

// Whether AMX-BF16 can run here: processor support (with AVX-512 BF16, used beside the tiles), the
// OS granted the tile state, the kernel level allows it (uso_set_kernel_level), and it is not
// switched off (uso_set_amx(0), through uso_select_bf16_kernels).
int uso_amx_available(void);
void uso_set_amx(int enabled);
// Processor and OS support alone.
int uso_amx_supported(void);

#if defined(__x86_64__)
#include <immintrin.h>

#define USO_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

// A bf16 tile is 16 rows × 32 values: one tile product reduces over USO_AMX_STEP values, and a
// packed B tile (16 value pairs × 16 columns) is USO_AMX_TILE elements.
enum { USO_AMX_STEP = 32, USO_AMX_TILE = 512 };

static inline int64_t uso_round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Tiles 0–3 accumulate a 32×32 f32 block, 4–5 hold two 16-row A tiles, 6–7 two B tiles. The
// configuration is per thread: load it before a run of uso_amx_block, release after.
USO_AMX_TARGET static inline void uso_amx_configure(void) {
    struct __attribute__((packed)) {
        uint8_t palette, start_row, reserved[14];
        uint16_t bytes_per_row[16];
        uint8_t rows[16];
    } config = {.palette = 1};
    for (int t = 0; t < 8; t++) { config.rows[t] = 16; config.bytes_per_row[t] = 64; }
    _tile_loadconfig(&config);
}

// The 32 rows of A a block reads: the tile of rows 0–15 for step s lies at top + s·step, that of rows
// 16–31 at bottom + s·step, each tile row `row_bytes` apart.
typedef struct {
    const uint16_t *top, *bottom;
    size_t row_bytes, step;
} uso_amx_rows;

// Rows of a row-major matrix, `stride` elements apart.
static inline uso_amx_rows uso_amx_row_major(const uint16_t *a, size_t stride) {
    return (uso_amx_rows){a, a + 16 * stride, stride * sizeof(uint16_t), USO_AMX_STEP};
}

// Rows packed by uso_amx_pack_block: each step's two tiles are one contiguous 2 KB run.
static inline uso_amx_rows uso_amx_tile_ordered(const uint16_t *a) {
    return (uso_amx_rows){a, a + USO_AMX_TILE, USO_AMX_STEP * sizeof(uint16_t), 2 * USO_AMX_TILE};
}

// C[32×32] (f32, row stride c_stride floats) = (or += if `accumulate`) A · B over `steps`·32
// values: B is `steps` packed tiles from b0 (columns 0–15) and b1 (columns 16–31), consecutive
// steps USO_AMX_TILE elements apart.
USO_AMX_TARGET static inline void uso_amx_block(uso_amx_rows a, const uint16_t *b0, const uint16_t *b1, int64_t steps,
                                                float *c, size_t c_stride, int accumulate) {
    size_t cs = c_stride * sizeof(float);
    if (accumulate) {
        _tile_loadd(0, c, cs); _tile_loadd(1, c + 16, cs);
        _tile_loadd(2, c + 16 * c_stride, cs); _tile_loadd(3, c + 16 * c_stride + 16, cs);
    } else {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    }
    // Software-pipelined: an operand tile of step s+1 is loaded as soon as the last product of step s
    // that reads its register has been issued, so the loads overlap the remaining products (loaded
    // after all four products instead, the block measured 3-5% slower in paired runs).
    if (steps > 0) {
        _tile_loadd(4, a.top, a.row_bytes); _tile_loadd(6, b0, 64);
        _tile_loadd(7, b1, 64); _tile_loadd(5, a.bottom, a.row_bytes);
    }
    for (int64_t s = 1; s <= steps; s++) {
        int more = s < steps;
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if (more) _tile_loadd(4, a.top + s * a.step, a.row_bytes);
        _tile_dpbf16ps(2, 5, 6);
        if (more) _tile_loadd(6, b0 + s * USO_AMX_TILE, 64);
        _tile_dpbf16ps(3, 5, 7);
        if (more) { _tile_loadd(5, a.bottom + s * a.step, a.row_bytes); _tile_loadd(7, b1 + s * USO_AMX_TILE, 64); }
    }
    _tile_stored(0, c, cs); _tile_stored(1, c + 16, cs);
    _tile_stored(2, c + 16 * c_stride, cs); _tile_stored(3, c + 16 * c_stride + 16, cs);
}

// Copies `count` (≤ 32) rows of A [·, k] (row stride `lda`) into tile order for uso_amx_tile_ordered:
// step s holds rows 0–31, values 32s…32s+31, 64 bytes a row. Rows past `count` and values past k
// are zeros.
void uso_amx_pack_block(const uint16_t *a, int64_t lda, int64_t count, int64_t k, uint16_t *packed);

// Packs X[rows, cols] (bf16, row stride `ld`) as B = Xᵀ (a product against rows of X, like q·kᵀ
// or x·weightᵀ): tile (group t of 16 rows, step s of 32 columns) lies at (t·steps + s)·512,
// steps = cols_pad / 32, and holds at row p, column j the pair (X[16t+j][32s+2p], X[16t+j][32s+2p+1]).
// Rows up to rows_pad (a multiple of 16) and columns up to cols_pad (of 32) are zero-filled.
void uso_amx_pack_rows(const uint16_t *x, int64_t ld, int64_t rows, int64_t cols, int64_t rows_pad,
                       int64_t cols_pad, uint16_t *packed);

// uso_attention_items for BF16 q, k, v on AMX tiles; same arguments and result.
int uso_attention_items_amx(const uint16_t *q, const uint16_t *k, const uint16_t *v,
                            const void *bias, int bias_dtype, void *out, int out_dtype,
                            int64_t lq, int64_t lk, int64_t heads, int64_t d, int64_t dv,
                            float scale, int causal, int64_t item_start, int64_t item_end);

// C[M, N] (f32 or bf16, row stride ldc) = A·Wᵀ (+ bias) for bf16 A [M, K] and W [N, K], row-major
// with row strides lda and ldw. Runs on `threads` threads (the caller's included).
int uso_gemm_amx(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw,
                 void *c, int c_dtype, int64_t ldc, const float *bias, int threads);
#endif
