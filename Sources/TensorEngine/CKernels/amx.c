// Availability and packing for the AMX kernels (amx.h).
#include "amx.h"
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static int amx_ready;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void probe_amx(void) {
    unsigned eax, ebx, ecx, edx;
    __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
    int tile = (edx >> 24) & 1, bf16 = (edx >> 22) & 1;
    // Linux hands out the 8 KB tile state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
    amx_ready = tile && bf16 && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

static int amx_switched_off;
void uso_set_amx(int enabled) { amx_switched_off = !enabled; }

int uso_amx_available(void) {
    pthread_once(&amx_once, probe_amx);
    return amx_ready && !amx_switched_off;
}

void uso_amx_pack_rows(const uint16_t *x, int64_t ld, int64_t rows, int64_t cols, int64_t rows_pad,
                       int64_t cols_pad, uint16_t *packed) {
    int64_t steps = cols_pad / USO_AMX_STEP;
    for (int64_t r = 0; r < rows_pad; r++) {
        const uint16_t *row = x + r * ld;
        uint16_t *column = packed + (r / 16) * steps * USO_AMX_TILE + (r % 16) * 2;
        if (r < rows && cols == cols_pad) {
            for (int64_t f = 0; f < cols; f += 2) {   // pair p of step s lands at tile row 16·s + p
                column[f * 16] = row[f];
                column[f * 16 + 1] = row[f + 1];
            }
            continue;
        }
        for (int64_t f = 0; f < cols_pad; f += 2) {
            column[f * 16] = r < rows && f < cols ? row[f] : 0;
            column[f * 16 + 1] = r < rows && f + 1 < cols ? row[f + 1] : 0;
        }
    }
}
