// C side of ImageIO: the parts of libpng and libjpeg whose error handling longjmps. Every call
// sets its own jump target, so a library error unwinds C frames only and comes back to Swift as
// a status code with a message. Colour conversion and everything else happen in Swift.
#ifndef USO_CIMAGESHIMS_H
#define USO_CIMAGESHIMS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    USO_IMAGE_OK = 0,
    USO_IMAGE_TOO_LARGE = 1,   // width * height exceeds the caller's pixel limit (nothing decoded)
    USO_IMAGE_TRUNCATED = 2,   // the data ends before the image does
    USO_IMAGE_FAILED = 3,      // any other library error; the message says which
} uso_image_status;

/// Samples as the library delivers them, row-major, interleaved, no row padding.
/// PNG: palette expanded to RGB(A), gray below 8 bits scaled to 8 bits, 16-bit samples kept
/// (big-endian). JPEG: gray (1), RGB (3) or CMYK as stored (4).
typedef struct {
    uint8_t *pixels;
    uint32_t width;
    uint32_t height;
    int channels;
    int bytes_per_sample;
    int source_color_type;   // PNG colour type of the file (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA)
    uint8_t *exif;           // JPEG: the APP1 Exif payload after "Exif\0\0", or NULL
    size_t exif_size;
} uso_decoded_image;

/// One PNG text chunk. `is_utf8` selects iTXt (UTF-8) over tEXt (Latin-1) when writing and
/// reports which kind was read.
typedef struct {
    char *key;
    char *text;
    size_t text_size;
    int is_utf8;
} uso_png_text;

uso_image_status uso_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                                uso_decoded_image *image, char *message, size_t message_size);
uso_image_status uso_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                                 uso_decoded_image *image, char *message, size_t message_size);
void uso_decoded_image_free(uso_decoded_image *image);

/// All tEXt, zTXt and iTXt chunks, before and after the image data (rows are decoded one at a
/// time into a single row buffer to reach the chunks after IDAT).
uso_image_status uso_png_read_text(const uint8_t *data, size_t size, uint64_t max_pixels,
                                   uso_png_text **texts, int *count, char *message, size_t message_size);
void uso_png_text_free(uso_png_text *texts, int count);

/// 8-bit RGB in, a malloc'ed file image out (free with uso_buffer_free).
uso_image_status uso_png_encode(const uint8_t *rgb, uint32_t width, uint32_t height,
                                const uso_png_text *texts, int text_count,
                                uint8_t **output, size_t *output_size, char *message, size_t message_size);
uso_image_status uso_jpeg_encode(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                                 uint8_t **output, size_t *output_size, char *message, size_t message_size);
void uso_buffer_free(uint8_t *buffer);

#endif
