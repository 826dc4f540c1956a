// Tensor memory. Large buffers ask for transparent huge pages: a fresh 100 MB activation otherwise
// takes ~25,000 page faults on first touch, which measured 10–30% of a 4096×3072·3072×12288 BF16
// product's time on this VM (THP is "madvise" on Debian's default kernel).
#include "ckernels.h"
#include <stdlib.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20 };

void *uso_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    size_t alignment = bytes >= 2 * (size_t)HUGE_PAGE ? HUGE_PAGE : 64;
    void *p = NULL;
    if (posix_memalign(&p, alignment, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (alignment == HUGE_PAGE) madvise(p, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
    return p;
}

void uso_free(void *p) { free(p); }
