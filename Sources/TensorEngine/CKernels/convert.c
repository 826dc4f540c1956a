// Storage conversions, bit-exact with PyTorch's CPU casts (c10's float8/BFloat16/Half rules).
#include "dispatch.h"
#include <math.h>
#include <string.h>

static inline uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float float_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

size_t uso_dtype_size(int dtype) {
    switch (dtype) {
    case USO_F32: return 4;
    case USO_BF16: case USO_F16: return 2;
    case USO_I32: return 4;
    default: return 1;
    }
}

USO_DISPATCHED(uso_bf16_to_f32, (const uint16_t *src, float *dst, size_t n), (src, dst, n)) {
    uint32_t *out = (uint32_t *)dst;
    for (size_t i = 0; i < n; i++) out[i] = (uint32_t)src[i] << 16;
}

USO_DISPATCHED(uso_f32_to_bf16, (const float *src, uint16_t *dst, size_t n), (src, dst, n)) {
    const uint32_t *in = (const uint32_t *)src;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = in[i];
        uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        // NaN becomes the canonical quiet NaN, as c10::BFloat16 does.
        dst[i] = (u & 0x7fffffffu) > 0x7f800000u ? 0x7fc0 : (uint16_t)rounded;
    }
}

// F16C's vcvtph2ps/vcvtps2ph in the AVX2 and AVX-512 builds; in the baseline build the compiler's
// runtime (libgcc's __extendhfsf2/__truncsfhf2), with the same IEEE rounding.
USO_DISPATCHED(uso_f16_to_f32, (const uint16_t *src, float *dst, size_t n), (src, dst, n)) {
    const _Float16 *h = (const _Float16 *)src;
    for (size_t i = 0; i < n; i++) dst[i] = (float)h[i];
}

USO_DISPATCHED(uso_f32_to_f16, (const float *src, uint16_t *dst, size_t n), (src, dst, n)) {
    _Float16 *h = (_Float16 *)dst;
    for (size_t i = 0; i < n; i++) h[i] = (_Float16)src[i];   // round to nearest even
}

// MARK: float8 — decoding by table, encoding by integer rounding of the f32 bits.

static float e4m3_table[256], e5m2_table[256];
static int tables_ready;

static float decode_e4m3(uint32_t v) {
    uint32_t exp = (v >> 3) & 0xf, man = v & 7;
    if ((v & 0x7f) == 0x7f) return (v & 0x80) ? -NAN : NAN;
    float mag = exp == 0 ? ldexpf((float)man, -9) : ldexpf((float)(man | 8), (int)exp - 10);
    return (v & 0x80) ? -mag : mag;
}

static void build_tables(void) {
    for (uint32_t v = 0; v < 256; v++) {
        e4m3_table[v] = decode_e4m3(v);
        uint16_t half = (uint16_t)(v << 8);   // e5m2 is the top byte of an IEEE half
        uso_f16_to_f32(&half, &e5m2_table[v], 1);
    }
    __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

static inline void ensure_tables(void) {
    if (!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) build_tables();   // idempotent
}

void uso_f8e4m3_to_f32(const uint8_t *src, float *dst, size_t n) {
    ensure_tables();
    for (size_t i = 0; i < n; i++) dst[i] = e4m3_table[src[i]];
}

void uso_f8e5m2_to_f32(const uint8_t *src, float *dst, size_t n) {
    ensure_tables();
    for (size_t i = 0; i < n; i++) dst[i] = e5m2_table[src[i]];
}

// Rounds |x| (bits `mag`, finite, below the overflow threshold) to a float8 magnitude code with
// `mbits` mantissa bits and exponent `bias`. Normal values: add the rounding increment to the f32
// bits and shift (carries move into the exponent as they should). Subnormals: x / smallest-step,
// rounded to nearest even (exact: scaling by a power of two).
static inline uint32_t round_magnitude(uint32_t mag, int mbits, int bias) {
    int shift = 23 - mbits;
    uint32_t min_normal = (uint32_t)(127 - bias + 1) << 23;
    if (mag < min_normal) {
        float steps = ldexpf(float_of(mag), bias - 1 + mbits);
        return (uint32_t)rintf(steps);
    }
    uint32_t odd = (mag >> shift) & 1u;
    mag += ((uint32_t)(bias - 127) << 23) + ((1u << (shift - 1)) - 1) + odd;
    return mag >> shift;
}

void uso_f32_to_f8e4m3(const float *src, uint8_t *dst, size_t n) {
    const uint32_t *in = (const uint32_t *)src;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = in[i], sign = (u >> 24) & 0x80, mag = u & 0x7fffffffu;
        // torch saturates: anything that would round past 448 (inf included) becomes ±448 (0x7e);
        // NaN stays NaN (0x7f) with its sign.
        uint32_t code;
        if (mag > 0x7f800000u) code = 0x7f;
        else if (mag >= 0x43f00000u) code = 0x7e;
        else { code = round_magnitude(mag, 3, 7); code = code > 0x7e ? 0x7e : code; }
        dst[i] = (uint8_t)(sign | code);
    }
}

void uso_f32_to_f8e5m2(const float *src, uint8_t *dst, size_t n) {
    const uint32_t *in = (const uint32_t *)src;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = in[i], sign = (u >> 24) & 0x80, mag = u & 0x7fffffffu;
        uint32_t code;
        if (mag > 0x7f800000u) code = 0x7f;            // NaN keeps its sign
        else if (mag >= 0x47800000u) code = 0x7c;      // 65536 and above: infinity
        else code = round_magnitude(mag, 2, 15);       // [61440, 65536) rounds to infinity too
        dst[i] = (uint8_t)(sign | code);
    }
}

// MARK: generic

void uso_convert(const void *src, int src_dtype, void *dst, int dst_dtype, size_t n) {
    if (src_dtype == dst_dtype) { memcpy(dst, src, n * uso_dtype_size(src_dtype)); return; }
    enum { CHUNK = 2048 };
    float scratch[CHUNK];
    size_t in_size = uso_dtype_size(src_dtype), out_size = uso_dtype_size(dst_dtype);
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t count = n - start < CHUNK ? n - start : CHUNK;
        const char *in = (const char *)src + start * in_size;
        char *out = (char *)dst + start * out_size;
        float *floats = dst_dtype == USO_F32 ? (float *)out : scratch;
        switch (src_dtype) {
        case USO_F32: memcpy(floats, in, count * 4); break;
        case USO_BF16: uso_bf16_to_f32((const uint16_t *)in, floats, count); break;
        case USO_F16: uso_f16_to_f32((const uint16_t *)in, floats, count); break;
        case USO_F8E4M3: uso_f8e4m3_to_f32((const uint8_t *)in, floats, count); break;
        case USO_F8E5M2: uso_f8e5m2_to_f32((const uint8_t *)in, floats, count); break;
        case USO_I8: for (size_t i = 0; i < count; i++) floats[i] = (float)((const int8_t *)in)[i]; break;
        }
        switch (dst_dtype) {
        case USO_F32: break;
        case USO_BF16: uso_f32_to_bf16(floats, (uint16_t *)out, count); break;
        case USO_F16: uso_f32_to_f16(floats, (uint16_t *)out, count); break;
        case USO_F8E4M3: uso_f32_to_f8e4m3(floats, (uint8_t *)out, count); break;
        case USO_F8E5M2: uso_f32_to_f8e5m2(floats, (uint8_t *)out, count); break;
        }
    }
}
