// BF16 matrix products on AMX tiles, for the shape linear layers have: C = A·Bᵀ-stored, i.e.
// A [M, K] row-major and B [K, N] given as the rows of a weight W [N, K] (B[k][n] = W[n][k]).
//
// Blocking: each worker owns a range of columns and packs them, PANEL columns at a time, into the
// tile layout (uso_amx_pack_rows); the packed panel stays in L2 while the rows of A stream past it
// 32 at a time, each block of rows reused across the panel's 32-column blocks. Each block of rows is
// first copied into tile order (uso_amx_pack_block): a tile load then reads one contiguous kilobyte
// rather than 16 lines a row stride apart, which measured 15-30% faster at K = 3072 (whose 6 KB row
// stride maps a tile's rows onto two L1 sets). The copy zero-pads short blocks and K, so
// no tail kernels are needed. The 32×32 f32 result of a block goes through a small scratch buffer
// where bias and the output type are applied.
#include "amx.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL = 256, BLOCK = 32 };

typedef struct {
    int64_t m, n, k;
    const uint16_t *a; int64_t lda;
    const uint16_t *w; int64_t ldw;
    void *c; int c_dtype; int64_t ldc;
    const float *bias;
} amx_gemm;

typedef struct {
    const amx_gemm *job;
    int64_t m0, m1, n0, n1;   // this worker's rows and columns (multiples of BLOCK except at the ends)
    int status;
} amx_worker;

static void store_block(const amx_gemm *g, const float *block, int64_t row, int64_t col) {
    int64_t rows = g->m - row < BLOCK ? g->m - row : BLOCK, cols = g->n - col < BLOCK ? g->n - col : BLOCK;
    for (int64_t i = 0; i < rows; i++) {
        float line[BLOCK];
        for (int64_t j = 0; j < cols; j++) line[j] = block[i * BLOCK + j] + (g->bias ? g->bias[col + j] : 0.0f);
        if (g->c_dtype == USO_F32) memcpy((float *)g->c + (row + i) * g->ldc + col, line, (size_t)cols * sizeof(float));
        else uso_f32_to_bf16(line, (uint16_t *)g->c + (row + i) * g->ldc + col, (size_t)cols);
    }
}

USO_AMX_TARGET static void *run_worker(void *argument) {
    amx_worker *worker = argument;
    const amx_gemm *g = worker->job;
    int64_t depth = uso_round_up(g->k, USO_AMX_STEP), steps = depth / USO_AMX_STEP;
    uint16_t *panel = malloc((size_t)(PANEL * depth) * sizeof(uint16_t));
    uint16_t *rows = malloc((size_t)(BLOCK * depth) * sizeof(uint16_t));
    if (!panel || !rows) {
        free(panel);
        free(rows);
        worker->status = 7;
        return NULL;
    }
    float block[BLOCK * BLOCK];
    uso_amx_configure();
    for (int64_t p0 = worker->n0; p0 < worker->n1; p0 += PANEL) {
        int64_t columns = worker->n1 - p0 < PANEL ? worker->n1 - p0 : PANEL;
        uso_amx_pack_rows(g->w + p0 * g->ldw, g->ldw, columns, g->k, uso_round_up(columns, BLOCK), depth, panel);
        for (int64_t row = worker->m0; row < worker->m1; row += BLOCK) {
            int64_t count = g->m - row < BLOCK ? g->m - row : BLOCK;
            uso_amx_pack_block(g->a + row * g->lda, g->lda, count, g->k, rows);
            for (int64_t j = 0; j < columns; j += BLOCK) {
                const uint16_t *b0 = panel + (j / 16) * steps * USO_AMX_TILE;
                uso_amx_block(uso_amx_tile_ordered(rows), b0, b0 + steps * USO_AMX_TILE, steps, block, BLOCK, 0);
                store_block(g, block, row, p0 + j);
            }
        }
    }
    _tile_release();
    free(panel);
    free(rows);
    return NULL;
}

int uso_gemm_amx(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw,
                 void *c, int c_dtype, int64_t ldc, const float *bias, int threads) {
    amx_gemm job = {m, n, k, a, lda, w, ldw, c, c_dtype, ldc, bias};
    int64_t row_blocks = (m + BLOCK - 1) / BLOCK, column_blocks = (n + BLOCK - 1) / BLOCK;
    // Split the columns when there are enough of them (each worker then packs only its own), else the rows.
    int split_columns = column_blocks >= 4 * threads || column_blocks >= row_blocks;
    int64_t units = split_columns ? column_blocks : row_blocks;
    if (threads > units) threads = (int)units;
    if (threads < 1) threads = 1;
    amx_worker workers[threads];
    pthread_t handles[threads];
    for (int t = 0; t < threads; t++) {
        int64_t u0 = units * t / threads * BLOCK, u1 = units * (t + 1) / threads * BLOCK;
        workers[t] = (amx_worker){&job, 0, m, 0, n, 0};
        if (split_columns) { workers[t].n0 = u0; workers[t].n1 = u1 < n ? u1 : n; }
        else { workers[t].m0 = u0; workers[t].m1 = u1 < m ? u1 : m; }
    }
    int started = 1;
    for (; started < threads; started++)
        if (pthread_create(&handles[started], NULL, run_worker, &workers[started]) != 0) break;
    run_worker(&workers[0]);
    // Workers that could not be started run here, one after another.
    for (int t = started; t < threads; t++) run_worker(&workers[t]);
    int status = workers[0].status;
    for (int t = 1; t < threads; t++) {
        if (t < started) pthread_join(handles[t], NULL);
        status |= workers[t].status;
    }
    return status;
}
