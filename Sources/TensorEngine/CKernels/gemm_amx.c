// BF16 matrix products on AMX tiles, for the shape linear layers have: C = A·Bᵀ-stored, i.e.
// A [M, K] row-major and B [K, N] given as the rows of a weight W [N, K] (B[k][n] = W[n][k]).
//
// Blocking: A is first copied, 32 rows at a time, into tile order (uso_amx_pack_block), once and
// shared by the workers: a tile load then reads one contiguous kilobyte rather than 16 lines a row
// stride apart (at K = 3072 that 6 KB stride maps a tile's rows onto two L1 sets), which measured
// 15-30% faster; packing once rather than once per panel saved another 12-20%. The copy zero-pads
// the last block and K, so no tail kernels are needed. Then each worker owns a range of columns and
// packs them, PANEL columns at a time, into the tile layout (uso_amx_pack_rows); the packed panel
// stays in L2 while the packed blocks of A stream past it, each reused across the panel's 32-column
// blocks. The 32×32 f32 result of a block goes through a small scratch buffer where bias and the
// output type are applied.
#if defined(__x86_64__)
#include "amx.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL = 256, BLOCK = 32 };

typedef struct {
    int64_t m, n, k;
    const uint16_t *a; int64_t lda;
    uint16_t *packed_a;   // A in tile order: the block of rows r·32… at r·32·depth
    const uint16_t *w; int64_t ldw;
    void *c; int c_dtype; int64_t ldc;
    const float *bias;
} amx_gemm;

typedef struct {
    const amx_gemm *job;
    int64_t m0, m1, n0, n1;   // this worker's rows and columns (multiples of BLOCK except at the ends)
    int status;
} amx_worker;

typedef void *(*worker_body)(void *);

// Runs `body` on each of `count` workers, on threads of their own but the first, which runs on the
// caller's; workers whose thread could not be started run here, one after another.
static void run_workers(worker_body body, amx_worker *workers, int count) {
    if (count < 1) return;
    pthread_t handles[count];
    int started = 1;
    for (; started < count; started++)
        if (pthread_create(&handles[started], NULL, body, &workers[started]) != 0) break;
    body(&workers[0]);
    for (int t = started; t < count; t++) body(&workers[t]);
    for (int t = 1; t < started; t++) pthread_join(handles[t], NULL);
}

// Packs the blocks of rows in [m0, m1) of A into the shared tile-ordered copy.
static void *pack_worker(void *argument) {
    amx_worker *worker = argument;
    const amx_gemm *g = worker->job;
    int64_t depth = uso_round_up(g->k, USO_AMX_STEP);
    for (int64_t row = worker->m0; row < worker->m1; row += BLOCK)
        uso_amx_pack_block(g->a + row * g->lda, g->lda, g->m - row < BLOCK ? g->m - row : BLOCK, g->k,
                           g->packed_a + row * depth);
    return NULL;
}

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
    if (!panel) {
        worker->status = 7;
        return NULL;
    }
    float block[BLOCK * BLOCK];
    uso_amx_configure();
    for (int64_t p0 = worker->n0; p0 < worker->n1; p0 += PANEL) {
        int64_t columns = worker->n1 - p0 < PANEL ? worker->n1 - p0 : PANEL;
        uso_amx_pack_rows(g->w + p0 * g->ldw, g->ldw, columns, g->k, uso_round_up(columns, BLOCK), depth, panel);
        for (int64_t row = worker->m0; row < worker->m1; row += BLOCK) {
            uso_amx_rows rows = uso_amx_tile_ordered(g->packed_a + row * depth);
            for (int64_t j = 0; j < columns; j += BLOCK) {
                const uint16_t *b0 = panel + (j / 16) * steps * USO_AMX_TILE;
                uso_amx_block(rows, b0, b0 + steps * USO_AMX_TILE, steps, block, BLOCK, 0);
                store_block(g, block, row, p0 + j);
            }
        }
    }
    _tile_release();
    free(panel);
    return NULL;
}

int uso_gemm_amx(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw,
                 void *c, int c_dtype, int64_t ldc, const float *bias, int threads) {
    int64_t row_blocks = (m + BLOCK - 1) / BLOCK, column_blocks = (n + BLOCK - 1) / BLOCK;
    size_t packed_bytes = (size_t)(row_blocks * BLOCK * uso_round_up(k, USO_AMX_STEP)) * sizeof(uint16_t);
    uint16_t *packed_a = uso_alloc(packed_bytes);
    if (!packed_a) return 7;
    amx_gemm job = {m, n, k, a, lda, packed_a, w, ldw, c, c_dtype, ldc, bias};
    if (threads < 1) threads = 1;
    amx_worker workers[threads];

    // A thread is worth starting for the copy only past ~1 MB of A (a start costs about as much as copying 100 KB).
    int64_t packers = 1 + m * k / (1 << 19);
    if (packers > threads) packers = threads;
    if (packers > row_blocks) packers = row_blocks;
    for (int t = 0; t < packers; t++)
        workers[t] = (amx_worker){&job, row_blocks * t / packers * BLOCK, row_blocks * (t + 1) / packers * BLOCK, 0, n, 0};
    run_workers(pack_worker, workers, (int)packers);

    // Split the columns when there are enough of them (each worker then packs only its own), else the rows.
    int split_columns = column_blocks >= 4 * threads || column_blocks >= row_blocks;
    int64_t units = split_columns ? column_blocks : row_blocks;
    if (threads > units) threads = (int)units;
    for (int t = 0; t < threads; t++) {
        int64_t u0 = units * t / threads * BLOCK, u1 = units * (t + 1) / threads * BLOCK;
        workers[t] = (amx_worker){&job, 0, m, 0, n, 0};
        if (split_columns) { workers[t].n0 = u0; workers[t].n1 = u1 < n ? u1 : n; }
        else { workers[t].m0 = u0; workers[t].m1 = u1 < m ? u1 : m; }
    }
    run_workers(run_worker, workers, threads);
    uso_free(packed_a, packed_bytes);
    int status = 0;
    for (int t = 0; t < threads; t++) status |= workers[t].status;
    return status;
}
#endif
