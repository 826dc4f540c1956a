// Tensor memory. Large buffers ask for transparent huge pages: a fresh 100 MB activation otherwise
// takes ~25,000 page faults on first touch, which measured 10–30% of a 4096×3072·3072×12288 BF16
// product's time on this VM (THP is "madvise" on Debian's default kernel).
//
// Freed large buffers are kept for reuse (up to IDLE_LIMIT bytes, exact sizes rounded to 64 KB): a
// DiT step allocates the same activation sizes in each of its 57 blocks, and handing back a buffer
// whose pages are already mapped saves the kernel zeroing them again (13% of an int8 step's samples
// were in clear_page before this).
#include "ckernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20, REUSED_MIN = 1 << 20, ROUNDING = 64 << 10, SLOTS = 64 };
static const size_t IDLE_LIMIT = (size_t)512 << 20;

static struct { void *pointer; size_t bytes; } idle[SLOTS];
static size_t idle_count, idle_bytes;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t rounded(size_t bytes) {
    return bytes >= REUSED_MIN ? (bytes + ROUNDING - 1) / ROUNDING * ROUNDING : bytes;
}

void *uso_alloc(size_t bytes) {
    bytes = rounded(bytes == 0 ? 1 : bytes);
    if (bytes >= REUSED_MIN) {
        pthread_mutex_lock(&idle_lock);
        for (size_t i = 0; i < idle_count; i++) {
            if (idle[i].bytes != bytes) continue;
            void *p = idle[i].pointer;
            idle[i] = idle[--idle_count];
            idle_bytes -= bytes;
            pthread_mutex_unlock(&idle_lock);
            return p;
        }
        pthread_mutex_unlock(&idle_lock);
    }
    size_t alignment = bytes >= 2 * (size_t)HUGE_PAGE ? HUGE_PAGE : 64;
    void *p = NULL;
    if (posix_memalign(&p, alignment, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (alignment == HUGE_PAGE) madvise(p, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
    return p;
}

void uso_free(void *p, size_t bytes) {
    bytes = rounded(bytes == 0 ? 1 : bytes);
    if (p && bytes >= REUSED_MIN) {
        pthread_mutex_lock(&idle_lock);
        // Keep it if there is room; else it makes room by freeing the oldest idle buffers.
        while (idle_count > 0 && (idle_count == SLOTS || idle_bytes + bytes > IDLE_LIMIT)) {
            free(idle[0].pointer);
            idle_bytes -= idle[0].bytes;
            idle[0] = idle[--idle_count];
        }
        if (bytes <= IDLE_LIMIT) {
            idle[idle_count].pointer = p;
            idle[idle_count++].bytes = bytes;
            idle_bytes += bytes;
            p = NULL;
        }
        pthread_mutex_unlock(&idle_lock);
    }
    free(p);
}

void uso_release_idle_memory(void) {
    pthread_mutex_lock(&idle_lock);
    while (idle_count > 0) free(idle[--idle_count].pointer);
    idle_bytes = 0;
    pthread_mutex_unlock(&idle_lock);
}
