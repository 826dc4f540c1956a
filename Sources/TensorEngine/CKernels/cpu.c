// Which kernel builds run: the processor's level, found once before main, capped for tests.
#include "amx.h"
#include "dispatch.h"

static int detected_vector_level(void) {
#if defined(__x86_64__)
    // __builtin_cpu_supports also asks whether the OS saves the AVX and AVX-512 registers.
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c"))
        return USO_LEVEL_BASELINE;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return USO_LEVEL_AVX512;
    return USO_LEVEL_AVX2;
#else
    return USO_LEVEL_BASELINE;
#endif
}

int uso_vector_level;
static int level_cap = USO_LEVEL_AMX;

__attribute__((constructor)) static void detect_level(void) { uso_vector_level = detected_vector_level(); }

int uso_kernel_level(void) {
    if (uso_vector_level == USO_LEVEL_AVX512 && level_cap >= USO_LEVEL_AMX && uso_amx_supported())
        return USO_LEVEL_AMX;
    return uso_vector_level;
}

int uso_set_kernel_level(int level) {
    level_cap = level < 0 ? USO_LEVEL_AMX : level;
    int vector = detected_vector_level();
    uso_vector_level = vector < level_cap ? vector : level_cap;
    return uso_kernel_level();
}
