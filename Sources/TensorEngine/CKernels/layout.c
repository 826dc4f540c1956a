// Data movement: nearest upsampling, im2col for convolutions, general permutation.
#include "rows.h"

void uso_upsample_nearest2x_rows(const void *x, void *out, size_t elem_size, size_t h, size_t w,
                                 size_t start, size_t end) {
    for (size_t row = start; row < end; row++) {
        size_t c = row / (2 * h), y = row % (2 * h);
        const char *src = (const char *)x + ((c * h + y / 2) * w) * elem_size;
        char *dst = (char *)out + row * 2 * w * elem_size;
        switch (elem_size) {
        case 4: for (size_t i = 0; i < 2 * w; i++) ((uint32_t *)dst)[i] = ((const uint32_t *)src)[i / 2]; break;
        case 2: for (size_t i = 0; i < 2 * w; i++) ((uint16_t *)dst)[i] = ((const uint16_t *)src)[i / 2]; break;
        default: for (size_t i = 0; i < 2 * w; i++) memcpy(dst + i * elem_size, src + (i / 2) * elem_size, elem_size);
        }
    }
}

// Columns are laid out [C·kh·kw][(oy1-oy0)·ow]: one GEMM with the weight [O, C·kh·kw] produces the
// output rows [oy0, oy1) of every channel.
void uso_im2col(const void *x, int x_dtype, void *columns, int col_dtype, size_t channels, size_t h, size_t w,
                size_t kh, size_t kw, size_t stride, size_t pad, size_t ow, size_t oy0, size_t oy1) {
    size_t tile = (oy1 - oy0) * ow, out_size = uso_dtype_size(col_dtype), in_size = uso_dtype_size(x_dtype);
    float scratch[USO_ROW_CHUNK];
    for (size_t c = 0; c < channels; c++) {
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kx = 0; kx < kw; kx++) {
                char *row = (char *)columns + ((c * kh + ky) * kw + kx) * tile * out_size;
                for (size_t oy = oy0; oy < oy1; oy++) {
                    char *dst = row + (oy - oy0) * ow * out_size;
                    long iy = (long)(oy * stride + ky) - (long)pad;
                    if (iy < 0 || iy >= (long)h) { memset(dst, 0, ow * out_size); continue; }
                    const char *src_row = (const char *)x + (c * h + (size_t)iy) * w * in_size;
                    // Output columns whose input column lies inside the image: [ox_lo, ox_hi).
                    long first = (long)pad - (long)kx;
                    size_t ox_lo = first <= 0 ? 0 : (size_t)((first + (long)stride - 1) / (long)stride);
                    long last = (long)w - 1 + (long)pad - (long)kx;
                    size_t ox_hi = last < 0 ? 0 : (size_t)(last / (long)stride) + 1;
                    if (ox_hi > ow) ox_hi = ow;
                    if (ox_lo > ox_hi) ox_lo = ox_hi;
                    memset(dst, 0, ox_lo * out_size);
                    memset(dst + ox_hi * out_size, 0, (ow - ox_hi) * out_size);
                    size_t ix0 = ox_lo * stride + kx - pad;
                    if (stride == 1 && x_dtype == col_dtype) {
                        memcpy(dst + ox_lo * out_size, src_row + ix0 * in_size, (ox_hi - ox_lo) * out_size);
                        continue;
                    }
                    for (size_t ox = ox_lo; ox < ox_hi; ox += USO_ROW_CHUNK) {
                        size_t n = ox_hi - ox < USO_ROW_CHUNK ? ox_hi - ox : USO_ROW_CHUNK;
                        size_t ix = ox * stride + kx - pad;
                        if (x_dtype == col_dtype && in_size == 4) {
                            for (size_t i = 0; i < n; i++)
                                ((uint32_t *)dst)[ox + i] = ((const uint32_t *)src_row)[ix + i * stride];
                        } else if (x_dtype == col_dtype && in_size == 2) {
                            for (size_t i = 0; i < n; i++)
                                ((uint16_t *)dst)[ox + i] = ((const uint16_t *)src_row)[ix + i * stride];
                        } else {
                            for (size_t i = 0; i < n; i++)   // gather, then convert the run at once
                                uso_convert(src_row + (ix + i * stride) * in_size, x_dtype, &scratch[i], USO_F32, 1);
                            uso_convert(scratch, USO_F32, dst + ox * out_size, col_dtype, n);
                        }
                    }
                }
            }
        }
    }
}

void uso_permute_rows(const void *x, void *out, size_t elem_size, const int64_t *out_shape,
                      const int64_t *in_strides, int rank, size_t start, size_t end) {
    size_t width = (size_t)out_shape[rank - 1];
    int64_t step = in_strides[rank - 1];
    for (size_t row = start; row < end; row++) {
        int64_t offset = 0;
        size_t rest = row;
        for (int axis = rank - 2; axis >= 0; axis--) {
            offset += (int64_t)(rest % (size_t)out_shape[axis]) * in_strides[axis];
            rest /= (size_t)out_shape[axis];
        }
        char *dst = (char *)out + row * width * elem_size;
        const char *src = (const char *)x + offset * (int64_t)elem_size;
        switch (elem_size) {
        case 4: for (size_t i = 0; i < width; i++) ((uint32_t *)dst)[i] = ((const uint32_t *)src)[(int64_t)i * step]; break;
        case 2: for (size_t i = 0; i < width; i++) ((uint16_t *)dst)[i] = ((const uint16_t *)src)[(int64_t)i * step]; break;
        default: for (size_t i = 0; i < width; i++) dst[i] = src[(int64_t)i * step];
        }
    }
}
