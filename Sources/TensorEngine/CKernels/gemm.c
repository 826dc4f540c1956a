// Matrix products: BF16 (bf16 inputs, f32 accumulation, as PyTorch on CPU) on our AMX kernel for
// linear layers (gemm_amx.c), on oneDNN's matmul primitive otherwise, and widened to F32 for sgemm
// where oneDNN has no bf16 matmul (processors without AVX-512); F32 on OpenBLAS sgemm (or
// oneDNN, selectable for benchmarks). oneDNN primitives are cached by shape, strides and types.
#include "amx.h"
#include "ckernels.h"
#include <cblas.h>
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void create_engine(void) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

static __thread dnnl_stream_t thread_stream;   // one stream per calling thread
static dnnl_stream_t current_stream(void) {
    if (!thread_stream && dnnl_stream_create(&thread_stream, engine, dnnl_stream_default_flags) != dnnl_success)
        thread_stream = NULL;
    return thread_stream;
}

// oneDNN runs on OpenMP (libgomp, loaded with libdnnl). A primitive fixes its thread count when
// created, so the count is part of the cache key; attention workers lower it to 1 for their own
// thread. The OpenMP entry points are looked up at run time: libgomp is only an indirect dependency.
static void (*omp_set_threads)(int);
static int (*omp_get_threads)(void);
static pthread_once_t omp_once = PTHREAD_ONCE_INIT;
static void resolve_omp(void) {
    omp_set_threads = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    omp_get_threads = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
}

int uso_gemm_threads(void) {
    pthread_once(&omp_once, resolve_omp);
    return omp_get_threads ? omp_get_threads() : 1;
}

void uso_set_gemm_threads(int n) {
    pthread_once(&omp_once, resolve_omp);
    if (omp_set_threads) omp_set_threads(n);
}

typedef struct {
    int64_t m, n, k, a_rs, a_cs, b_rs, b_cs, c_rs;
    int a_dtype, b_dtype, c_dtype, has_bias, threads;
} gemm_key;

enum { CACHE_SIZE = 64 };
static struct { gemm_key key; dnnl_primitive_t primitive; } cache[CACHE_SIZE];
static int cache_count, cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static dnnl_data_type_t dnnl_type(int dtype) {
    switch (dtype) {
    case USO_F32: return dnnl_f32;
    case USO_BF16: return dnnl_bf16;
    case USO_F16: return dnnl_f16;
    case USO_I8: return dnnl_s8;
    case USO_U8: return dnnl_u8;
    case USO_I32: return dnnl_s32;
    default: return dnnl_data_type_undef;
    }
}

typedef struct { dnnl_memory_desc_t a, b, c, bias; } gemm_descs;

static int describe(const gemm_key *key, gemm_descs *d) {
    dnnl_dims_t a_dims = {key->m, key->k}, a_strides = {key->a_rs, key->a_cs};
    dnnl_dims_t b_dims = {key->k, key->n}, b_strides = {key->b_rs, key->b_cs};
    dnnl_dims_t c_dims = {key->m, key->n}, c_strides = {key->c_rs, 1};
    dnnl_dims_t bias_dims = {1, key->n}, bias_strides = {key->n, 1};
    if (dnnl_memory_desc_init_by_strides(&d->a, 2, a_dims, dnnl_type(key->a_dtype), a_strides) != dnnl_success) return 1;
    if (dnnl_memory_desc_init_by_strides(&d->b, 2, b_dims, dnnl_type(key->b_dtype), b_strides) != dnnl_success) return 1;
    if (dnnl_memory_desc_init_by_strides(&d->c, 2, c_dims, dnnl_type(key->c_dtype), c_strides) != dnnl_success) return 1;
    if (dnnl_memory_desc_init_by_strides(&d->bias, 2, bias_dims, dnnl_f32, bias_strides) != dnnl_success) return 1;
    return 0;
}

static dnnl_primitive_t cached_primitive(const gemm_key *key, const gemm_descs *d) {
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < cache_count; i++) {
        if (memcmp(&cache[i].key, key, sizeof *key) == 0) {
            dnnl_primitive_t found = cache[i].primitive;
            pthread_mutex_unlock(&cache_lock);
            return found;
        }
    }
    dnnl_primitive_t primitive = NULL;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_matmul_desc_init(&desc, &d->a, &d->b, key->has_bias ? &d->bias : NULL, &d->c) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL) == dnnl_success) {
        if (dnnl_primitive_create(&primitive, pd) != dnnl_success) primitive = NULL;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (primitive) {
        // Round-robin replacement. An evicted primitive may still be running on another
        // thread, so it is kept alive (leaked) rather than destroyed: shapes are few.
        int slot = cache_count < CACHE_SIZE ? cache_count++ : cache_next++ % CACHE_SIZE;
        cache[slot].key = *key;
        cache[slot].primitive = primitive;
    }
    pthread_mutex_unlock(&cache_lock);
    return primitive;
}

static int onednn_matmul(const gemm_key *key, const void *a, const void *b, void *c, const float *bias) {
    pthread_once(&engine_once, create_engine);
    if (!engine) return 1;
    gemm_descs d;
    if (describe(key, &d) != 0) return 2;
    dnnl_primitive_t primitive = cached_primitive(key, &d);
    dnnl_stream_t stream = current_stream();
    if (!primitive || !stream) return 3;
    dnnl_memory_t memories[4] = {NULL, NULL, NULL, NULL};
    int status = 0;
    status |= dnnl_memory_create(&memories[0], &d.a, engine, (void *)a) != dnnl_success;
    status |= dnnl_memory_create(&memories[1], &d.b, engine, (void *)b) != dnnl_success;
    status |= dnnl_memory_create(&memories[2], &d.c, engine, c) != dnnl_success;
    if (key->has_bias) status |= dnnl_memory_create(&memories[3], &d.bias, engine, (void *)bias) != dnnl_success;
    if (status == 0) {
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_SRC, memories[0]}, {DNNL_ARG_WEIGHTS, memories[1]},
            {DNNL_ARG_DST, memories[2]}, {DNNL_ARG_BIAS, memories[3]},
        };
        status = dnnl_primitive_execute(primitive, stream, key->has_bias ? 4 : 3, args) != dnnl_success ||
                 dnnl_stream_wait(stream) != dnnl_success;
    }
    for (int i = 0; i < 4; i++) if (memories[i]) dnnl_memory_destroy(memories[i]);
    return status ? 4 : 0;
}

// OpenBLAS picks its kernels for the processor when it loads (DYNAMIC_ARCH). Debian's 0.3.21 does not
// know processors newer than itself (Sapphire and Emerald Rapids among them) and falls back to its
// Prescott (SSE3) kernels, measured 4x slower than its SkylakeX ones on such a Xeon. Where it chose a
// core below what the processor runs, and the user has not chosen one with OPENBLAS_CORETYPE, its
// dynamic init runs again with the right core, before main, while nothing else calls it.
char *openblas_get_corename(void);
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);

__attribute__((constructor)) static void choose_openblas_core(void) {
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *chosen = openblas_get_corename();
    static const char *const below_avx2[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge",
                                             "Northwood", "Katmai", "Coppermine", "Banias", "Athlon", "Opteron", "Barcelona",
                                             "Bobcat", "Nano", "Unknown"};
    int outdated = 0;
    for (size_t i = 0; i < sizeof below_avx2 / sizeof *below_avx2; i++)
        outdated |= chosen && strncmp(chosen, below_avx2[i], strlen(below_avx2[i])) == 0;
    const char *better = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") ? "SKYLAKEX"
                         : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "HASWELL" : NULL;
    if (!outdated || !better) return;
    gotoblas_dynamic_quit();
    setenv("OPENBLAS_CORETYPE", better, 1);
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
#endif
}

const char *uso_blas_core_name(void) { return openblas_get_corename(); }

static int f32_engine = -1;   // 0 = OpenBLAS, 1 = oneDNN, -1 = the faster here (calibrate())
void uso_set_f32_gemm_engine(int engine_choice) { f32_engine = engine_choice; }
int uso_blas_threads(void) { return openblas_get_num_threads(); }
void uso_set_blas_threads(int n) { openblas_set_num_threads(n); }

// sgemm needs unit stride along one axis of each operand.
static int blas_gemm(const gemm_key *key, const float *a, const float *b, float *c, const float *bias) {
    enum CBLAS_TRANSPOSE ta, tb;
    int64_t lda, ldb;
    if (key->a_cs == 1) { ta = CblasNoTrans; lda = key->a_rs; }
    else if (key->a_rs == 1) { ta = CblasTrans; lda = key->a_cs; }
    else return 5;
    if (key->b_cs == 1) { tb = CblasNoTrans; ldb = key->b_rs; }
    else if (key->b_rs == 1) { tb = CblasTrans; ldb = key->b_cs; }
    else return 5;
    float beta = 0;
    if (bias) {
        for (int64_t i = 0; i < key->m; i++) memcpy(c + i * key->c_rs, bias, (size_t)key->n * sizeof(float));
        beta = 1;
    }
    cblas_sgemm(CblasRowMajor, ta, tb, (blasint)key->m, (blasint)key->n, (blasint)key->k, 1.0f,
                a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)key->c_rs);
    return 0;
}

// oneDNN 2.6 runs bf16 products only on AVX-512 processors; elsewhere (AVX2 machines) it creates no
// primitive for them. Asked once, with a small product.
static int onednn_bf16;
static pthread_once_t onednn_bf16_once = PTHREAD_ONCE_INIT;
static void probe_onednn_bf16(void) {
    pthread_once(&engine_once, create_engine);
    gemm_key key = {16, 16, 16, 16, 1, 1, 16, 16, USO_BF16, USO_BF16, USO_F32, 0, 1};
    gemm_descs d;
    onednn_bf16 = engine && describe(&key, &d) == 0 && cached_primitive(&key, &d) != NULL;
}

// A half-precision operand [rows, cols] with a unit stride on one axis, as F32 in the same orientation:
// lines along that axis, so sgemm reads it as it would have read the original; *rs and *cs become
// the copy's strides. NULL when memory is exhausted; the copy is freed with uso_free(copy, 4·rows·cols).
static float *widened(const void *x, int dtype, int64_t rows, int64_t cols, int64_t *rs, int64_t *cs) {
    int by_rows = *cs == 1;
    int64_t lines = by_rows ? rows : cols, length = by_rows ? cols : rows, stride = by_rows ? *rs : *cs;
    float *copy = uso_alloc(sizeof(float) * (size_t)(lines * length));
    if (!copy) return NULL;
    for (int64_t i = 0; i < lines; i++)
        uso_convert((const char *)x + (size_t)(i * stride) * uso_dtype_size(dtype), dtype, copy + i * length,
                    USO_F32, (size_t)length);
    *rs = by_rows ? cols : 1;
    *cs = by_rows ? 1 : rows;
    return copy;
}

// BF16/F16 products where neither AMX nor oneDNN runs them: the operands widened to F32 (exact) and
// multiplied by sgemm, which is bf16 inputs with f32 accumulation, as on the other paths. B and C go
// a block of columns at a time, so the widened copies stay small beside the operands.
static int widened_gemm(const gemm_key *key, const void *a, const void *b, void *c, const float *bias) {
    if ((key->a_cs != 1 && key->a_rs != 1) || (key->b_cs != 1 && key->b_rs != 1)) return 5;   // as blas_gemm
    gemm_key part = *key;
    float *wide_a = key->a_dtype == USO_F32 ? NULL : widened(a, key->a_dtype, key->m, key->k, &part.a_rs, &part.a_cs);
    if (key->a_dtype != USO_F32 && !wide_a) return 7;
    int64_t block = (int64_t)(4 << 20) / (key->k > key->m ? key->k : key->m);
    block = block < 16 ? 16 : block;
    size_t b_size = uso_dtype_size(key->b_dtype), c_size = uso_dtype_size(key->c_dtype);
    int status = 0;
    for (int64_t n0 = 0; n0 < key->n && status == 0; n0 += block) {
        part.n = key->n - n0 < block ? key->n - n0 : block;
        part.b_rs = key->b_rs;
        part.b_cs = key->b_cs;
        const void *b_part = (const char *)b + (size_t)(n0 * key->b_cs) * b_size;
        float *wide_b = key->b_dtype == USO_F32 ? NULL : widened(b_part, key->b_dtype, key->k, part.n, &part.b_rs, &part.b_cs);
        float *wide_c = key->c_dtype == USO_F32 ? NULL : uso_alloc(sizeof(float) * (size_t)(key->m * part.n));
        part.c_rs = wide_c ? part.n : key->c_rs;
        char *c_part = (char *)c + (size_t)n0 * c_size;
        if ((key->b_dtype != USO_F32 && !wide_b) || (key->c_dtype != USO_F32 && !wide_c)) status = 7;
        else status = blas_gemm(&part, wide_a ? wide_a : a, wide_b ? wide_b : b_part, wide_c ? wide_c : (float *)c_part,
                                bias ? bias + n0 : NULL);
        for (int64_t i = 0; wide_c && status == 0 && i < key->m; i++)
            uso_convert(wide_c + i * part.n, USO_F32, c_part + (size_t)(i * key->c_rs) * c_size, key->c_dtype,
                        (size_t)part.n);
        if (wide_b) uso_free(wide_b, sizeof(float) * (size_t)(key->k * part.n));
        if (wide_c) uso_free(wide_c, sizeof(float) * (size_t)(key->m * part.n));
    }
    if (wide_a) uso_free(wide_a, sizeof(float) * (size_t)(key->m * key->k));
    return status;
}

enum { AMX_MIN_ROWS = 128 };

static int bf16_choice = -1;   // as uso_select_bf16_kernels, or -1: AMX, else the faster of the other two
void uso_select_bf16_kernels(int kernels) {
    bf16_choice = kernels;
    uso_set_amx(kernels <= 0);
}

// Which F32 library and which BF16 path (without AMX) are faster on this processor, timed once per
// process on a product of the DiT's proportions, since the ranking differs by machine: oneDNN's F32
// measured 1.8x OpenBLAS on a Zen 5 and slower on other hosts, and on AVX-512 processors without
// AVX-512 BF16 oneDNN 2.6 emulates bf16 at a fraction of the F32 rate, where widening wins.
static int f32_calibrated, bf16_widens_calibrated;
static pthread_once_t calibrate_once = PTHREAD_ONCE_INIT;

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef int (*gemm_runner)(const gemm_key *, const void *, const void *, void *, const float *);

// Best of three runs after a warm-up; a failing runner never wins.
static double best_seconds(gemm_runner run, const gemm_key *key, const void *a, const void *b, void *c) {
    if (run(key, a, b, c, NULL) != 0) return 1e30;
    double best = 1e30;
    for (int i = 0; i < 3; i++) {
        double start = seconds_now();
        run(key, a, b, c, NULL);
        double elapsed = seconds_now() - start;
        best = elapsed < best ? elapsed : best;
    }
    return best;
}

static int run_blas(const gemm_key *key, const void *a, const void *b, void *c, const float *bias) {
    return blas_gemm(key, a, b, c, bias);
}

static void calibrate(void) {
    pthread_once(&onednn_bf16_once, probe_onednn_bf16);
    enum { M = 256, N = 1024, K = 1024 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
    uint16_t *a16 = malloc(2 * M * K), *b16 = malloc(2 * K * N);
    if (a && b && c && a16 && b16) {
        for (int i = 0; i < M * K; i++) a[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
        for (int i = 0; i < K * N; i++) b[i] = (float)((i * 104729) % 251) / 251.0f - 0.5f;
        uso_f32_to_bf16(a, a16, M * K);
        uso_f32_to_bf16(b, b16, K * N);
        // Weights as linear layers hold them: B[k][n] = w[n][k].
        gemm_key f32 = {M, N, K, K, 1, 1, K, N, USO_F32, USO_F32, USO_F32, 0, uso_gemm_threads()};
        double blas = best_seconds(run_blas, &f32, a, b, c), dnnl = best_seconds(onednn_matmul, &f32, a, b, c);
        f32_calibrated = dnnl < 0.9 * blas;   // OpenBLAS unless oneDNN is clearly faster
        if (onednn_bf16 && !uso_amx_available()) {
            gemm_key bf16 = {M, N, K, K, 1, 1, K, N, USO_BF16, USO_BF16, USO_F32, 0, uso_gemm_threads()};
            bf16_widens_calibrated = best_seconds(widened_gemm, &bf16, a16, b16, c) < best_seconds(onednn_matmul, &bf16, a16, b16, c);
        }
    }
    free(a); free(b); free(c); free(a16); free(b16);
}

static int uses_onednn_f32(void) {
    if (f32_engine >= 0) return f32_engine;
    pthread_once(&calibrate_once, calibrate);
    return f32_calibrated;
}

static int widens_bf16(void) {
    pthread_once(&onednn_bf16_once, probe_onednn_bf16);
    if (bf16_choice == 2 || !onednn_bf16) return 1;
    if (bf16_choice >= 0) return 0;
    pthread_once(&calibrate_once, calibrate);
    return bf16_widens_calibrated;
}

int uso_bf16_gemm_path(void) { return uso_amx_available() ? 0 : widens_bf16() ? 2 : 1; }
int uso_f32_gemm_engine(void) { return uses_onednn_f32(); }

int uso_gemm(int64_t m, int64_t n, int64_t k,
             const void *a, int a_dtype, int64_t a_rs, int64_t a_cs,
             const void *b, int b_dtype, int64_t b_rs, int64_t b_cs,
             void *c, int c_dtype, int64_t c_rs, const float *bias) {
    if (m == 0 || n == 0) return 0;
    gemm_key key = {m, n, k, a_rs, a_cs, b_rs, b_cs, c_rs, a_dtype, b_dtype, c_dtype, bias != NULL, uso_gemm_threads()};
    int all_f32 = a_dtype == USO_F32 && b_dtype == USO_F32 && c_dtype == USO_F32;
    if (all_f32 && (k == 0 || !uses_onednn_f32())) {
        int status = blas_gemm(&key, a, b, c, bias);
        if (status == 0) return 0;
    }
    if (k == 0) return 6;
    // Linear-layer products (B given as weight rows) on AMX tiles, when there are enough rows of A to
    // pay for packing B once per call.
#if defined(__x86_64__)
    if (a_dtype == USO_BF16 && b_dtype == USO_BF16 && (c_dtype == USO_F32 || c_dtype == USO_BF16) && a_cs == 1 &&
        b_rs == 1 && m >= AMX_MIN_ROWS && uso_amx_available())
        return uso_gemm_amx(m, n, k, a, a_rs, b, b_cs, c, c_dtype, c_rs, bias, m * n * k < (1 << 22) ? 1 : key.threads);
#endif
    if (!all_f32 && widens_bf16()) return widened_gemm(&key, a, b, c, bias);
    return onednn_matmul(&key, a, b, c, bias);
}

int uso_gemm_u8s8(int64_t m, int64_t n, int64_t k, const uint8_t *a, const int8_t *w, int32_t *acc) {
    if (m == 0 || n == 0) return 0;
    gemm_key key = {m, n, k, k, 1, 1, k, n, USO_U8, USO_I8, USO_I32, 0, uso_gemm_threads()};
    return onednn_matmul(&key, a, w, acc, NULL);
}

int uso_linear(int64_t rows, int64_t in_features, int64_t out_features,
               const void *x, int compute, const void *weight, int w_dtype,
               const float *bias, void *y, int y_dtype) {
    // B[k][n] = weight[n][k]: row stride 1, column stride in_features (no transpose copy).
    if (w_dtype == compute)
        return uso_gemm(rows, out_features, in_features, x, compute, in_features, 1,
                        weight, compute, 1, in_features, y, y_dtype, out_features, bias);
    // Other weight types are widened a block of output rows at a time (~8 MB of scratch). F8 values are
    // exact in BF16 and F32 alike, so where BF16 products are widened to F32 anyway, F8 goes straight
    // to F32 rather than being converted twice.
    int exact_in_bf16 = w_dtype == USO_F8E4M3 || w_dtype == USO_F8E5M2;
    int widened_type = compute == USO_BF16 && exact_in_bf16 && widens_bf16() ? USO_F32 : compute;
    size_t compute_size = uso_dtype_size(widened_type);
    int64_t block = (int64_t)((8u << 20) / compute_size) / (in_features > 0 ? in_features : 1);
    block = block < 64 ? 64 : block / 64 * 64;
    if (block > out_features) block = out_features;
    void *scratch = malloc((size_t)(block * in_features) * compute_size);
    if (!scratch) return 7;
    int status = 0;
    for (int64_t n0 = 0; n0 < out_features && status == 0; n0 += block) {
        int64_t count = out_features - n0 < block ? out_features - n0 : block;
        uso_convert((const char *)weight + (size_t)(n0 * in_features) * uso_dtype_size(w_dtype), w_dtype,
                    scratch, widened_type, (size_t)(count * in_features));
        status = uso_gemm(rows, count, in_features, x, compute, in_features, 1, scratch, widened_type, 1, in_features,
                          (char *)y + (size_t)n0 * uso_dtype_size(y_dtype), y_dtype, out_features,
                          bias ? bias + n0 : NULL);
    }
    free(scratch);
    return status;
}
