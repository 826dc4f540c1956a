// libpng reading and writing with a jump target per call (see CImageShims.h).
#include "CImageShims.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jmp_buf jump;
    char message[256];
    int truncated;
    int too_large;
} png_failure;

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
} png_memory_source;

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} png_memory_sink;

static void on_png_error(png_structp png, png_const_charp text) {
    png_failure *failure = png_get_error_ptr(png);
    if (failure->message[0] == 0) snprintf(failure->message, sizeof failure->message, "%s", text);
    longjmp(failure->jump, 1);
}

static void on_png_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;  // warnings (bad ancillary CRCs, unknown chunks) do not stop decoding, as in Pillow
}

static void read_from_memory(png_structp png, png_bytep out, size_t length) {
    png_memory_source *source = png_get_io_ptr(png);
    if (source->size - source->offset < length) {
        png_failure *failure = png_get_error_ptr(png);
        failure->truncated = 1;
        png_error(png, "the file ends before the image data does");
    }
    memcpy(out, source->data + source->offset, length);
    source->offset += length;
}

static void write_to_memory(png_structp png, png_bytep bytes, size_t length) {
    png_memory_sink *sink = png_get_io_ptr(png);
    if (sink->capacity - sink->size < length) {
        size_t capacity = sink->capacity ? sink->capacity : 65536;
        while (capacity - sink->size < length) capacity *= 2;
        uint8_t *grown = realloc(sink->data, capacity);
        if (!grown) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, length);
    sink->size += length;
}

static void flush_memory(png_structp png) { (void)png; }

static uso_image_status report(const png_failure *failure, char *message, size_t message_size) {
    snprintf(message, message_size, "%s", failure->message);
    if (failure->too_large) return USO_IMAGE_TOO_LARGE;
    return failure->truncated ? USO_IMAGE_TRUNCATED : USO_IMAGE_FAILED;
}

/// Creates a reader over `source` whose errors jump to `failure`; false (with a message) when out of memory.
static int open_reader(png_failure *failure, png_memory_source *source, png_structp *png, png_infop *info,
                       char *message, size_t message_size) {
    *png = png_create_read_struct(PNG_LIBPNG_VER_STRING, failure, on_png_error, on_png_warning);
    *info = *png ? png_create_info_struct(*png) : NULL;
    if (!*info) {
        png_destroy_read_struct(png, NULL, NULL);
        snprintf(message, message_size, "out of memory");
        return 0;
    }
    png_set_read_fn(*png, source, read_from_memory);
    return 1;
}

/// Reads the header and sets up the expansions both readers share; returns the row size. An image
/// of more than `max_pixels` is an error (reported as USO_IMAGE_TOO_LARGE) before any row is read.
static size_t prepare_rows(png_structp png, png_infop info, uint64_t max_pixels, uso_decoded_image *image, int *passes) {
    png_read_info(png, info);
    image->width = png_get_image_width(png, info);
    image->height = png_get_image_height(png, info);
    if ((uint64_t)image->width * image->height > max_pixels) {
        png_failure *failure = png_get_error_ptr(png);
        failure->too_large = 1;
        png_error(png, "the image has too many pixels");
    }
    image->source_color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    if (image->source_color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (image->source_color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    *passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    image->channels = png_get_channels(png, info);
    image->bytes_per_sample = png_get_bit_depth(png, info) / 8;
    return png_get_rowbytes(png, info);
}

uso_image_status uso_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                                uso_decoded_image *image, char *message, size_t message_size) {
    png_failure failure = {0};
    png_memory_source source = {data, size, 0};
    uint8_t *volatile pixels = NULL;
    memset(image, 0, sizeof *image);

    png_structp png;
    png_infop info;
    if (!open_reader(&failure, &source, &png, &info, message, message_size)) return USO_IMAGE_FAILED;
    if (setjmp(failure.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);  // image->pixels stays NULL; its size stays for the too-large error
        return report(&failure, message, message_size);
    }
    int passes = 1;
    size_t row_bytes = prepare_rows(png, info, max_pixels, image, &passes);
    pixels = malloc(row_bytes * image->height);
    if (!pixels) png_error(png, "out of memory");
    // Every pass rewrites the rows in place, so after the last one they hold the full image.
    for (int pass = 0; pass < passes; pass++) {
        for (uint32_t y = 0; y < image->height; y++) png_read_row(png, pixels + y * row_bytes, NULL);
    }
    png_destroy_read_struct(&png, &info, NULL);
    image->pixels = pixels;
    return USO_IMAGE_OK;
}

uso_image_status uso_png_read_text(const uint8_t *data, size_t size, uint64_t max_pixels,
                                   uso_png_text **texts, int *count, char *message, size_t message_size) {
    png_failure failure = {0};
    png_memory_source source = {data, size, 0};
    uint8_t *volatile row = NULL;
    uso_png_text *volatile copies = NULL;
    volatile int copied = 0;
    uso_decoded_image header = {0};
    *texts = NULL;
    *count = 0;

    png_structp png;
    png_infop info;
    if (!open_reader(&failure, &source, &png, &info, message, message_size)) return USO_IMAGE_FAILED;
    if (setjmp(failure.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(row);
        uso_png_text_free(copies, copied);
        return report(&failure, message, message_size);
    }
    int passes = 1;
    size_t row_bytes = prepare_rows(png, info, max_pixels, &header, &passes);
    row = malloc(row_bytes);
    if (!row) png_error(png, "out of memory");
    for (int pass = 0; pass < passes; pass++) {
        for (uint32_t y = 0; y < header.height; y++) png_read_row(png, row, NULL);
    }
    png_read_end(png, info);

    png_textp chunks = NULL;
    int chunk_count = png_get_text(png, info, &chunks, NULL);
    copies = calloc(chunk_count > 0 ? chunk_count : 1, sizeof(uso_png_text));
    if (!copies) png_error(png, "out of memory");
    for (int i = 0; i < chunk_count; i++) {
        int is_utf8 = chunks[i].compression == PNG_ITXT_COMPRESSION_NONE || chunks[i].compression == PNG_ITXT_COMPRESSION_zTXt;
        size_t length = is_utf8 ? chunks[i].itxt_length : chunks[i].text_length;
        char *key = strdup(chunks[i].key);
        char *text = malloc(length + 1);
        if (!key || !text) {
            free(key);
            free(text);
            png_error(png, "out of memory");
        }
        if (length) memcpy(text, chunks[i].text, length);
        text[length] = 0;
        copies[i] = (uso_png_text){key, text, length, is_utf8};
        copied = i + 1;
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(row);
    *texts = copies;
    *count = copied;
    return USO_IMAGE_OK;
}

void uso_png_text_free(uso_png_text *texts, int count) {
    if (!texts) return;
    for (int i = 0; i < count; i++) {
        free(texts[i].key);
        free(texts[i].text);
    }
    free(texts);
}

uso_image_status uso_png_encode(const uint8_t *rgb, uint32_t width, uint32_t height,
                                const uso_png_text *texts, int text_count,
                                uint8_t **output, size_t *output_size, char *message, size_t message_size) {
    png_failure failure = {0};
    png_memory_sink sink = {0};
    png_text *volatile chunks = NULL;
    *output = NULL;
    *output_size = 0;

    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &failure, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(message, message_size, "out of memory");
        return USO_IMAGE_FAILED;
    }
    // `sink` is only changed through a pointer inside libpng callbacks, so it is in memory here.
    if (setjmp(failure.jump)) {
        png_destroy_write_struct(&png, &info);
        free(chunks);
        free(sink.data);
        return report(&failure, message, message_size);
    }
    png_set_write_fn(png, &sink, write_to_memory, flush_memory);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        chunks = calloc(text_count, sizeof(png_text));
        if (!chunks) png_error(png, "out of memory");
        for (int i = 0; i < text_count; i++) {
            chunks[i].key = texts[i].key;
            chunks[i].text = texts[i].text;
            if (texts[i].is_utf8) {
                chunks[i].compression = PNG_ITXT_COMPRESSION_NONE;
                chunks[i].itxt_length = texts[i].text_size;
            } else {
                chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
                chunks[i].text_length = texts[i].text_size;
            }
        }
        png_set_text(png, info, chunks, text_count);
    }
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(chunks);
    *output = sink.data;
    *output_size = sink.size;
    return USO_IMAGE_OK;
}
