// Loading and storing a run of elements as floats, so every kernel computes in F32 whatever the
// storage type, without a full-size F32 copy of its input.
#pragma once
#include "ckernels.h"
#include <string.h>

enum { USO_ROW_CHUNK = 1024 };

// Pointer to `n` floats of `src` starting at element `index`: F32 storage is used in place,
// other types are decoded into `scratch`.
static inline const float *uso_load(const void *src, int dtype, size_t index, size_t n, float *scratch) {
    if (dtype == USO_F32) return (const float *)src + index;
    uso_convert((const char *)src + index * uso_dtype_size(dtype), dtype, scratch, USO_F32, n);
    return scratch;
}

// Where to write `n` floats for element `index` of `dst`: in place for F32, else `scratch`
// (then call uso_store).
static inline float *uso_target(void *dst, int dtype, size_t index, float *scratch) {
    return dtype == USO_F32 ? (float *)dst + index : scratch;
}

static inline void uso_store(const float *values, void *dst, int dtype, size_t index, size_t n) {
    if (dtype == USO_F32) return;
    uso_convert(values, USO_F32, (char *)dst + index * uso_dtype_size(dtype), dtype, n);
}
