// Run-time choice of vector code. The C target is compiled for the architecture's baseline (no
// -march), so one binary runs on any x86-64; the hot loops are also compiled for AVX2+FMA+F16C and
// for AVX-512, and each call takes the build for uso_vector_level (cpu.c). Elsewhere (aarch64)
// there is one build, the baseline, which includes NEON.
#pragma once
#include "ckernels.h"

// USO_LEVEL_BASELINE, USO_LEVEL_AVX2 or USO_LEVEL_AVX512: what the processor runs, capped by
// uso_set_kernel_level.
extern int uso_vector_level;

// Helpers of a dispatched function must be inlined into each build, or they run the baseline code.
#define USO_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__)
#define USO_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define USO_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

// Defines `void name params` as a dispatcher over three builds of the body that follows the macro.
// `args` are the parameter names, in parentheses. A prior `static` declaration makes name internal.
#define USO_DISPATCHED(name, params, args)                                  \
    USO_INLINE void name##_body params;                                     \
    USO_TARGET_AVX512 static void name##_avx512 params { name##_body args; } \
    USO_TARGET_AVX2 static void name##_avx2 params { name##_body args; }     \
    void name params {                                                      \
        switch (uso_vector_level) {                                         \
        case USO_LEVEL_AVX512: name##_avx512 args; break;                   \
        case USO_LEVEL_AVX2: name##_avx2 args; break;                       \
        default: name##_body args;                                          \
        }                                                                   \
    }                                                                       \
    USO_INLINE void name##_body params
#else
#define USO_DISPATCHED(name, params, args) void name params
#endif
