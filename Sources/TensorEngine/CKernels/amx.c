// Availability and packing for the AMX kernels (amx.h).
#include "amx.h"
#include <pthread.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

static int amx_switched_off;
void uso_set_amx(int enabled) { amx_switched_off = !enabled; }
int uso_amx_available(void) { return !amx_switched_off && uso_kernel_level() == USO_LEVEL_AMX; }

#if defined(__x86_64__)
static int amx_ready;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void probe_amx(void) {
    unsigned eax, ebx, ecx, edx;
    __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
    int tile = (edx >> 24) & 1, bf16 = (edx >> 22) & 1;
    __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(1));
    int avx512_bf16 = (eax >> 5) & 1;
    // Linux hands out the 8 KB tile state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
    amx_ready = tile && bf16 && avx512_bf16 && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

int uso_amx_supported(void) {
    pthread_once(&amx_once, probe_amx);
    return amx_ready;
}

// One whole tile: tile row p is column p of the 16×16 matrix of 32-bit value pairs that starts at x
// (16 rows, `ld` elements apart), a 16×16 transpose in four rounds of AVX-512 shuffles.
USO_AMX_TARGET static void transpose_tile(const uint16_t *x, int64_t ld, uint16_t *tile) {
    __m512i r[16], t[16], u[16], v[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(x + i * ld);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = i; j < i + 4; j++) {
            v[j] = _mm512_shuffle_i32x4(u[j], u[j + 4], 0x88);
            v[j + 4] = _mm512_shuffle_i32x4(u[j], u[j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        _mm512_storeu_si512(tile + j * 32, _mm512_shuffle_i32x4(v[j], v[j + 8], 0x88));
        _mm512_storeu_si512(tile + (j + 8) * 32, _mm512_shuffle_i32x4(v[j], v[j + 8], 0xdd));
    }
}

// A tile at the edge of X: values past `rows` or `cols` are zeros.
static void pack_edge_tile(const uint16_t *x, int64_t ld, int64_t rows, int64_t cols, int64_t row0, int64_t col0,
                           uint16_t *tile) {
    for (int p = 0; p < 16; p++)
        for (int j = 0; j < 16; j++)
            for (int half = 0; half < 2; half++) {
                int64_t r = row0 + j, c = col0 + 2 * p + half;
                tile[p * 32 + 2 * j + half] = r < rows && c < cols ? x[r * ld + c] : 0;
            }
}

void uso_amx_pack_rows(const uint16_t *x, int64_t ld, int64_t rows, int64_t cols, int64_t rows_pad,
                       int64_t cols_pad, uint16_t *packed) {
    int64_t steps = cols_pad / USO_AMX_STEP;
    for (int64_t t = 0; t < rows_pad / 16; t++)
        for (int64_t s = 0; s < steps; s++) {
            uint16_t *tile = packed + (t * steps + s) * USO_AMX_TILE;
            if (16 * t + 16 <= rows && USO_AMX_STEP * (s + 1) <= cols)
                transpose_tile(x + 16 * t * ld + USO_AMX_STEP * s, ld, tile);
            else
                pack_edge_tile(x, ld, rows, cols, 16 * t, USO_AMX_STEP * s, tile);
        }
}

void uso_amx_pack_block(const uint16_t *a, int64_t lda, int64_t count, int64_t k, uint16_t *packed) {
    for (int64_t s = 0; s < uso_round_up(k, USO_AMX_STEP) / USO_AMX_STEP; s++) {
        int64_t k0 = s * USO_AMX_STEP, width = k - k0 < USO_AMX_STEP ? k - k0 : USO_AMX_STEP;
        uint16_t *step = packed + s * 2 * USO_AMX_TILE;
        for (int64_t i = 0; i < 32; i++) {
            int64_t copied = i < count ? width : 0;
            if (copied) memcpy(step + i * USO_AMX_STEP, a + i * lda + k0, (size_t)copied * sizeof(uint16_t));
            memset(step + i * USO_AMX_STEP + copied, 0, (size_t)(USO_AMX_STEP - copied) * sizeof(uint16_t));
        }
    }
}
#else
int uso_amx_supported(void) { return 0; }
#endif
