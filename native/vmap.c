/* nefeli C core: volume-map operations, see vmap.h.  Pure-Python twins live in
 * native/fallback.py and the tests hold the two to identical results. */
#include "vmap.h"

#include <string.h>

#define KIND(e, i) ((e)[(size_t)(i) * NF_VMAP_ENTRY])

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int range_ok(uint64_t offset, uint64_t length, uint64_t block_size, uint64_t size) {
    return block_size != 0 && offset <= size && length <= size - offset;
}

long nf_vmap_runs(uint64_t offset, uint64_t length, uint64_t block_size, uint64_t size, uint64_t *out) {
    if (!range_ok(offset, length, block_size, size)) return -1;
    long n = 0;
    uint64_t pos = offset, end = offset + length;
    while (pos < end) {
        uint64_t block = pos / block_size, in = pos % block_size;
        uint64_t take = block_size - in;
        if (take > end - pos) take = end - pos;
        out[3 * n] = block;
        out[3 * n + 1] = in;
        out[3 * n + 2] = take;
        n++;
        pos += take;
    }
    return n;
}

long nf_vmap_cow_plan(const uint8_t *entries, size_t count, uint64_t offset, uint64_t length,
                      uint64_t block_size, uint64_t size, uint8_t *actions) {
    if (!range_ok(offset, length, block_size, size)) return -1;
    long changes = 0;
    size_t k = 0;
    uint64_t pos = offset, end = offset + length;
    while (pos < end) {
        uint64_t block = pos / block_size, in = pos % block_size;
        uint64_t blen = block_size;
        if ((block + 1) * block_size > size) blen = size - block * block_size; /* last, short block */
        uint64_t take = blen - in;
        if (take > end - pos) take = end - pos;
        if (block >= count) return -1;
        int kind = KIND(entries, block);
        uint8_t act;
        if (kind == NF_VMAP_OWNED)
            act = NF_COW_IN_PLACE;
        else if (in == 0 && take == blen)
            act = NF_COW_TAKE;
        else if (kind == NF_VMAP_ZERO)
            act = NF_COW_ZERO_FILL;
        else
            act = NF_COW_COPY;
        if (act != NF_COW_IN_PLACE) changes++;
        actions[k++] = act;
        pos += take;
    }
    return changes;
}

void nf_vmap_fill(uint8_t *entries, size_t first, size_t n, int kind) {
    for (size_t i = first; i < first + n; i++) {
        uint8_t *e = entries + i * NF_VMAP_ENTRY;
        memset(e, 0, NF_VMAP_ENTRY);
        e[0] = (uint8_t)kind;
    }
}

size_t nf_vmap_freeze(uint8_t *src, uint8_t *dst, size_t count, uint32_t extent) {
    size_t frozen = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t *s = src + i * NF_VMAP_ENTRY;
        if (s[0] == NF_VMAP_OWNED) {
            memset(s, 0, NF_VMAP_ENTRY);
            s[0] = NF_VMAP_FROZEN;
            put_u32(s + 4, extent);
            frozen++;
        }
    }
    memcpy(dst, src, count * NF_VMAP_ENTRY);
    return frozen;
}

size_t nf_vmap_resolve(uint8_t *entries, size_t count, uint32_t extent, const uint8_t *digests) {
    size_t done = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t *e = entries + i * NF_VMAP_ENTRY;
        if (e[0] == NF_VMAP_FROZEN && get_u32(e + 4) == extent) {
            memset(e, 0, 8);
            e[0] = NF_VMAP_SHARED;
            memcpy(e + 8, digests + i * 32, 32);
            done++;
        }
    }
    return done;
}

static int entries_differ(const uint8_t *a, const uint8_t *b) {
    if (a[0] == NF_VMAP_OWNED || b[0] == NF_VMAP_OWNED) return 1;
    return memcmp(a, b, NF_VMAP_ENTRY) != 0;
}

size_t nf_vmap_diff(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint64_t *out) {
    size_t n = na > nb ? na : nb, pairs = 0;
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        int differ;
        if (i < na && i < nb)
            differ = entries_differ(a + i * NF_VMAP_ENTRY, b + i * NF_VMAP_ENTRY);
        else if (i < na)
            differ = KIND(a, i) != NF_VMAP_ZERO;
        else
            differ = KIND(b, i) != NF_VMAP_ZERO;
        if (differ && !open) {
            out[2 * pairs] = i;
            open = 1;
        } else if (!differ && open) {
            out[2 * pairs + 1] = i;
            pairs++;
            open = 0;
        }
    }
    if (open) {
        out[2 * pairs + 1] = n;
        pairs++;
    }
    return pairs;
}

size_t nf_vmap_status_runs(const uint8_t *entries, size_t first, size_t n, uint64_t *out) {
    size_t runs = 0;
    for (size_t i = first; i < first + n;) {
        int zero = KIND(entries, i) == NF_VMAP_ZERO;
        size_t j = i + 1;
        while (j < first + n && (KIND(entries, j) == NF_VMAP_ZERO) == zero) j++;
        out[3 * runs] = i;
        out[3 * runs + 1] = j - i;
        out[3 * runs + 2] = (uint64_t)zero;
        runs++;
        i = j;
    }
    return runs;
}

void nf_vmap_ref_digests(const uint8_t *entries, size_t count, const uint8_t *zero_full,
                         const uint8_t *zero_last, uint8_t *out) {
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = entries + i * NF_VMAP_ENTRY;
        const uint8_t *d = e[0] == NF_VMAP_SHARED ? e + 8 : (i + 1 == count ? zero_last : zero_full);
        memcpy(out + i * 32, d, 32);
    }
}
