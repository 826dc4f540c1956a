// libjpeg(-turbo) reading and writing with a jump target per call (see CImageShims.h).
#include "CImageShims.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr manager;  // first, so the library's pointer is also ours
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int truncated;
} jpeg_failure;

static void on_jpeg_error(j_common_ptr codec) {
    jpeg_failure *failure = (jpeg_failure *)codec->err;
    (*codec->err->format_message)(codec, failure->message);
    longjmp(failure->jump, 1);
}

static void on_jpeg_message(j_common_ptr codec, int level) {
    // Level -1 is a warning: decoding goes on (as in Pillow), but running out of data means the
    // rest of the image would be invented gray, which we report as a truncated file.
    if (level == -1 && codec->err->msg_code == JWRN_JPEG_EOF) ((jpeg_failure *)codec->err)->truncated = 1;
}

static const uint8_t exif_signature[6] = {'E', 'x', 'i', 'f', 0, 0};

uso_image_status uso_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                                 uso_decoded_image *image, char *message, size_t message_size) {
    struct jpeg_decompress_struct codec;
    jpeg_failure failure;
    memset(&failure, 0, sizeof failure);
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile exif = NULL;
    memset(image, 0, sizeof *image);

    codec.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = on_jpeg_error;
    failure.manager.emit_message = on_jpeg_message;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&codec);
        free(pixels);
        free(exif);
        memset(image, 0, sizeof *image);
        snprintf(message, message_size, "%s", failure.message);
        return failure.truncated ? USO_IMAGE_TRUNCATED : USO_IMAGE_FAILED;
    }
    jpeg_create_decompress(&codec);
    jpeg_mem_src(&codec, data, (unsigned long)size);
    jpeg_save_markers(&codec, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&codec, TRUE);
    image->width = codec.image_width;
    image->height = codec.image_height;
    if ((uint64_t)image->width * image->height > max_pixels) {
        jpeg_destroy_decompress(&codec);
        return USO_IMAGE_TOO_LARGE;
    }
    switch (codec.jpeg_color_space) {
        case JCS_GRAYSCALE: codec.out_color_space = JCS_GRAYSCALE; break;
        case JCS_CMYK:
        case JCS_YCCK: codec.out_color_space = JCS_CMYK; break;
        default: codec.out_color_space = JCS_RGB; break;
    }
    for (jpeg_saved_marker_ptr marker = codec.marker_list; marker; marker = marker->next) {
        if (marker->marker != JPEG_APP0 + 1 || marker->data_length < sizeof exif_signature) continue;
        if (memcmp(marker->data, exif_signature, sizeof exif_signature) != 0) continue;
        size_t length = marker->data_length - sizeof exif_signature;
        exif = malloc(length ? length : 1);
        if (!exif) ERREXIT(&codec, JERR_OUT_OF_MEMORY);
        memcpy(exif, marker->data + sizeof exif_signature, length);
        image->exif_size = length;
        break;
    }
    jpeg_start_decompress(&codec);
    image->channels = codec.output_components;
    image->bytes_per_sample = 1;
    size_t row_bytes = (size_t)codec.output_width * codec.output_components;
    pixels = malloc(row_bytes * codec.output_height);
    if (!pixels) ERREXIT(&codec, JERR_OUT_OF_MEMORY);
    while (codec.output_scanline < codec.output_height) {
        JSAMPROW row = pixels + (size_t)codec.output_scanline * row_bytes;
        jpeg_read_scanlines(&codec, &row, 1);
    }
    if (failure.truncated) {
        snprintf(failure.message, sizeof failure.message, "Premature end of JPEG file");
        longjmp(failure.jump, 1);
    }
    // All scanlines are in; what follows (EOI, trailing markers) does not change the pixels.
    jpeg_destroy_decompress(&codec);
    image->pixels = pixels;
    image->exif = exif;
    return USO_IMAGE_OK;
}

void uso_decoded_image_free(uso_decoded_image *image) {
    free(image->pixels);
    free(image->exif);
    memset(image, 0, sizeof *image);
}

uso_image_status uso_jpeg_encode(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                                 uint8_t **output, size_t *output_size, char *message, size_t message_size) {
    struct jpeg_compress_struct codec;
    jpeg_failure failure;
    memset(&failure, 0, sizeof failure);
    // libjpeg reallocates the buffer through these pointers; they live in memory, not registers.
    struct { unsigned char *data; unsigned long size; } destination = {NULL, 0};
    *output = NULL;
    *output_size = 0;

    codec.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = on_jpeg_error;
    failure.manager.emit_message = on_jpeg_message;
    if (setjmp(failure.jump)) {
        jpeg_destroy_compress(&codec);
        free(destination.data);
        snprintf(message, message_size, "%s", failure.message);
        return USO_IMAGE_FAILED;
    }
    jpeg_create_compress(&codec);
    jpeg_mem_dest(&codec, &destination.data, &destination.size);
    codec.image_width = width;
    codec.image_height = height;
    codec.input_components = 3;
    codec.in_color_space = JCS_RGB;
    jpeg_set_defaults(&codec);
    jpeg_set_quality(&codec, quality, TRUE);
    jpeg_start_compress(&codec, TRUE);
    while (codec.next_scanline < codec.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)codec.next_scanline * width * 3);
        jpeg_write_scanlines(&codec, &row, 1);
    }
    jpeg_finish_compress(&codec);
    jpeg_destroy_compress(&codec);
    *output = destination.data;
    *output_size = destination.size;
    return USO_IMAGE_OK;
}

void uso_buffer_free(uint8_t *buffer) { free(buffer); }
