// Hot loops of the tensor engine in C, compiled -O3 even in debug builds of the Swift code, for the
// architecture's baseline; the loops are also built for AVX2 and AVX-512 and chosen at run time
// (dispatch.h). Kernels are single-threaded over a range of rows; the Swift side splits work across cores.
#pragma once
#include <stddef.h>
#include <stdint.h>

// MARK: processor support
// Kernel builds by level: portable C (SSE2 on x86-64, NEON on aarch64); AVX2 with FMA and F16C;
// AVX-512 (F, BW, VL, DQ); AVX-512 and AMX tiles for BF16 products (with AVX-512 BF16).
enum uso_kernel_level { USO_LEVEL_BASELINE, USO_LEVEL_AVX2, USO_LEVEL_AVX512, USO_LEVEL_AMX };
// The level the kernels run at now: the highest the processor (and OS) supports unless capped.
int uso_kernel_level(void);
// Caps the level (-1: no cap) and returns the level in effect. For tests and benchmarks; not while
// kernels run on other threads.
int uso_set_kernel_level(int level);

// Storage types, numbered as Swift's `DType.code`.
// I8 is a storage type (quantized weights); U8 and I32 appear only inside the int8 products.
enum uso_dtype { USO_F32 = 0, USO_BF16 = 1, USO_F16 = 2, USO_F8E4M3 = 3, USO_F8E5M2 = 4, USO_I8 = 5, USO_U8 = 6, USO_I32 = 7 };
size_t uso_dtype_size(int dtype);

// Tensor memory: 64-byte aligned, huge pages for large buffers; NULL when memory is exhausted.
// Freed buffers of 1 MB and more are kept for reuse by allocations of the same size (at most 512 MB
// idle); `bytes` is the size given to uso_alloc.
void *uso_alloc(size_t bytes);
void uso_free(void *p, size_t bytes);
// Gives the idle buffers back to the system (between stages, before a large model loads).
void uso_release_idle_memory(void);

// MARK: storage conversions. All rounding is round-to-nearest-even, bit-exact with PyTorch's casts.
void uso_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void uso_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void uso_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void uso_f32_to_f16(const float *src, uint16_t *dst, size_t n);
// float8_e4m3fn: no infinities, 0x7f/0xff are NaN, max 448; larger values (and inf) saturate to ±448, as in torch.
void uso_f8e4m3_to_f32(const uint8_t *src, float *dst, size_t n);
void uso_f32_to_f8e4m3(const float *src, uint8_t *dst, size_t n);
// float8_e5m2: IEEE-like (inf and NaN), max 57344; |x| >= 61440 becomes inf.
void uso_f8e5m2_to_f32(const uint8_t *src, float *dst, size_t n);
void uso_f32_to_f8e5m2(const float *src, uint8_t *dst, size_t n);
// Any storage type to any other, through float in small chunks.
void uso_convert(const void *src, int src_dtype, void *dst, int dst_dtype, size_t n);

// MARK: elementwise
enum uso_unary_op {
    USO_SILU, USO_SIGMOID, USO_GELU_ERF, USO_GELU_TANH,
    USO_ADD_SCALAR, USO_MUL_SCALAR, USO_SUB_SCALAR, USO_DIV_SCALAR, USO_RSUB_SCALAR,
};
enum uso_binary_op { USO_ADD, USO_SUB, USO_MUL, USO_DIV };

// out[i] = op(x[i]) for elements [start, end); `scalar` is the operand of the *_SCALAR ops.
void uso_unary(int op, float scalar, const void *x, int x_dtype, void *out, int out_dtype,
               size_t start, size_t end);

// Broadcasting binary op over rows of the last axis of `shape` (rank <= 8). `a_strides`/`b_strides`
// are element strides per axis (0 where broadcast); `out` is contiguous. Rows [row_start, row_end).
void uso_binary(int op, const void *a, int a_dtype, const int64_t *a_strides,
                const void *b, int b_dtype, const int64_t *b_strides,
                void *out, int out_dtype, const int64_t *shape, int rank,
                size_t row_start, size_t row_end);

// MARK: row-wise reductions over the last axis (rows [start, end) of length n)
void uso_softmax_rows(const void *x, int x_dtype, void *out, int out_dtype, size_t n, size_t start, size_t end);
// weight/bias may be NULL (non-affine).
void uso_layernorm_rows(const void *x, int x_dtype, void *out, int out_dtype, size_t n,
                        const float *weight, const float *bias, float eps, size_t start, size_t end);
void uso_rmsnorm_rows(const void *x, int x_dtype, void *out, int out_dtype, size_t n,
                      const float *weight, float eps, size_t start, size_t end);
// GroupNorm of [C, plane] for groups [group_start, group_end), `channels_per_group` channels each.
void uso_groupnorm(const void *x, int x_dtype, void *out, int out_dtype, size_t plane, size_t channels_per_group,
                   const float *weight, const float *bias, float eps, size_t group_start, size_t group_end);
// Interleaved-pair rotary embedding on x [L, H, D] for rows (t·H + h) in [start, end); cos/sin [L, D/2].
void uso_rope_rows(const void *x, int x_dtype, void *out, int out_dtype, size_t heads, size_t dim,
                   const float *cos_table, const float *sin_table, size_t start, size_t end);

// MARK: images [C, H, W] and layout
// Output rows (c·OH + y) in [start, end) of the nearest ×2 upsampling; same dtype in and out.
void uso_upsample_nearest2x_rows(const void *x, void *out, size_t elem_size, size_t h, size_t w,
                                 size_t start, size_t end);
// im2col for output rows [oy0, oy1): columns [C·kh·kw, (oy1-oy0)·ow] in `col_dtype` (zero padding).
void uso_im2col(const void *x, int x_dtype, void *columns, int col_dtype, size_t channels, size_t h, size_t w,
                size_t kh, size_t kw, size_t stride, size_t pad, size_t ow, size_t oy0, size_t oy1);
// out[i] for rows [start, end) of the output (last axis = row): general strided gather, same dtype.
void uso_permute_rows(const void *x, void *out, size_t elem_size, const int64_t *out_shape,
                      const int64_t *in_strides, int rank, size_t start, size_t end);

// MARK: matrix products
// C[M, N] = A[M, K]·B[K, N] (+ bias[N]) (+ C if accumulate). Element (i, j) of X lives at
// X + i·rs + j·cs (elements). F32 runs on OpenBLAS sgemm, BF16 on AMX tiles (gemm_amx.c) or
// oneDNN (f32 accumulation either way);
// C may be F32 or BF16. Returns 0, or a nonzero status on failure (unsupported combination).
int uso_gemm(int64_t m, int64_t n, int64_t k,
             const void *a, int a_dtype, int64_t a_rs, int64_t a_cs,
             const void *b, int b_dtype, int64_t b_rs, int64_t b_cs,
             void *c, int c_dtype, int64_t c_rs, const float *bias);
// y[rows, out] = x[rows, in]·weightᵀ + bias with weight [out, in] stored as `w_dtype`; compute in
// `compute` (F32 or BF16: x must already be in it). Weights of another type are converted in
// bounded chunks of output rows, never all at once. y is `y_dtype` (F32 or BF16).
int uso_linear(int64_t rows, int64_t in_features, int64_t out_features,
               const void *x, int compute, const void *weight, int w_dtype,
               const float *bias, void *y, int y_dtype);
// MARK: int8 products (W8A8 linear layers)
// Weights [out, in] quantized per output row, symmetric: w ≈ q·scale, q in [-127, 127]; `sums` gets
// each row's Σq (for the activations' zero point). Rows [start, end) of the weight.
void uso_quantize_weight_rows(const void *w, int w_dtype, int64_t in_features, int8_t *q, float *scales,
                              int32_t *sums, int64_t start, int64_t end);
// Activations [rows, in] quantized per row (token), asymmetric over [min(x, 0), max(x, 0)]:
// x ≈ (q − zero)·scale, q in [0, 255]. Rows [start, end).
void uso_quantize_activation_rows(const void *x, int x_dtype, int64_t in_features, uint8_t *q, float *scales,
                                  int32_t *zeros, int64_t start, int64_t end);
// acc[M, N] = a[M, K]·wᵀ with a u8 [M, K] and w s8 [N, K], exact int32 sums (oneDNN's int8 matmul,
// VNNI where the processor has it). Returns 0, or nonzero when no int8 primitive exists.
int uso_gemm_u8s8(int64_t m, int64_t n, int64_t k, const uint8_t *a, const int8_t *w, int32_t *acc);
// y[r, n] = x_scale[r]·w_scale[n]·(acc[r, n] − x_zero[r]·w_sum[n]) + bias[n] for rows [start, end),
// stored as `y_dtype`; bias may be NULL.
void uso_dequantize_rows(const int32_t *acc, int64_t n, const float *x_scales, const int32_t *x_zeros,
                         const float *w_scales, const int32_t *w_sums, const float *bias, void *y, int y_dtype,
                         int64_t y_row_stride, int64_t start, int64_t end);

// What runs BF16 products (linear layers and attention): 0 = AMX tiles where the processor has them,
// 1 = oneDNN's matmul, 2 = the operands widened to F32 for OpenBLAS. A choice the processor cannot
// run falls to the next one (oneDNN 2.6 has no bf16 matmul without AVX-512). The default, -1, is AMX
// where present, else whichever of 1 and 2 a timed trial once per process finds faster. For tests
// and benchmarks.
void uso_select_bf16_kernels(int kernels);
// What a large BF16 linear-layer product runs on now, numbered as above.
int uso_bf16_gemm_path(void);
// The F32 GEMM engine: 0 = OpenBLAS, 1 = oneDNN, -1 (the default) = the faster in a timed trial.
void uso_set_f32_gemm_engine(int engine);
// The F32 engine in use now (0 or 1).
int uso_f32_gemm_engine(void);
// The processor core OpenBLAS runs its kernels for (e.g. "SkylakeX", "Haswell", "Zen").
const char *uso_blas_core_name(void);
// oneDNN's thread count for GEMMs started from the calling thread (OpenMP's per-thread setting).
int uso_gemm_threads(void);
void uso_set_gemm_threads(int n);

// MARK: attention
// Blocked (online-softmax) attention, split into work items (head, block of query rows): item i is
// head i / blocks, query rows [(i % blocks)·USO_ATTENTION_QUERY_BLOCK, ...) with
// blocks = ceil(Lq / USO_ATTENTION_QUERY_BLOCK). q [Lq, H, D], k [Lk, H, D], v [Lk, H, Dv] in
// `in_dtype`; bias [H, Lq, Lk] or NULL; out [Lq, H·Dv] in `out_dtype`. Memory per call is
// O(block·(D + Dv + key block)), never Lq·Lk. Returns 0, or nonzero if scratch memory is refused.
enum { USO_ATTENTION_QUERY_BLOCK = 256, USO_ATTENTION_KEY_BLOCK = 256 };
int uso_attention_items(const void *q, const void *k, const void *v, int in_dtype,
                        const void *bias, int bias_dtype, void *out, int out_dtype,
                        int64_t lq, int64_t lk, int64_t heads, int64_t d, int64_t dv,
                        float scale, int causal, int64_t item_start, int64_t item_end);
// Threads OpenBLAS may use (its own pool). Attention runs OpenBLAS and oneDNN single-threaded
// inside each of its workers.
int uso_blas_threads(void);
void uso_set_blas_threads(int n);
