/* nefeli C core: volume-map operations (docs/volumes.md §3).
 *
 * A volume map is a packed array of 40-byte entries, struct "<BBHI32s":
 * kind u8, flags u8 (0), reserved u16 (0), extent u32, ref 32 bytes. */
#ifndef NF_VMAP_H
#define NF_VMAP_H

#include <stddef.h>
#include <stdint.h>

#define NF_VMAP_ENTRY 40
#define NF_VMAP_ZERO 0   /* reads as zeros, stores nothing */
#define NF_VMAP_SHARED 1 /* ref = digest of an immutable block in the block store */
#define NF_VMAP_OWNED 2  /* the volume's own block, written in place */
#define NF_VMAP_FROZEN 3 /* immutable, in extent file `extent`, not yet hashed */

/* CoW plan actions, one per block a write touches */
#define NF_COW_IN_PLACE 0   /* owned: write in place */
#define NF_COW_TAKE 1       /* the write covers the whole block: own it, nothing to copy */
#define NF_COW_COPY 2       /* shared/frozen and partly written: copy the block first */
#define NF_COW_ZERO_FILL 3  /* zero and partly written: the rest of the block is zeros */

/* Split [offset, offset+length) of a volume into per-block runs: out gets
 * (block index, offset in block, length) triples.  Returns the run count, or -1
 * when the range is past `size` or block_size is 0. */
long nf_vmap_runs(uint64_t offset, uint64_t length, uint64_t block_size, uint64_t size, uint64_t *out);

/* Plan a write of [offset, offset+length): actions[k] for the k-th block touched.
 * Returns the number of blocks that change owner (actions TAKE/COPY/ZERO_FILL),
 * or -1 on a bad range. */
long nf_vmap_cow_plan(const uint8_t *entries, size_t count, uint64_t offset, uint64_t length,
                      uint64_t block_size, uint64_t size, uint8_t *actions);

/* Set entries [first, first+n) to `kind` with extent 0 and a zero ref. */
void nf_vmap_fill(uint8_t *entries, size_t first, size_t n, int kind);

/* Snapshot bookkeeping: copy src into dst and turn every OWNED entry of both into
 * FROZEN(extent).  Returns the number of entries frozen. */
size_t nf_vmap_freeze(uint8_t *src, uint8_t *dst, size_t count, uint32_t extent);

/* Replace every FROZEN(extent) entry whose index has digests[i] by SHARED(digests[i]).
 * Returns how many were replaced. */
size_t nf_vmap_resolve(uint8_t *entries, size_t count, uint32_t extent, const uint8_t *digests);

/* Changed block ranges between maps a and b: out gets [start, end) pairs (merged).
 * Entries differ when their bytes differ or either is OWNED (content unknown to the
 * map); past the shorter map a block differs unless the longer one has ZERO there.
 * out must hold 2 * (max(na, nb) / 2 + 1) values.  Returns the pair count. */
size_t nf_vmap_diff(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint64_t *out);

/* Allocation runs of entries [first, first+n): out gets (start, count, zero) triples,
 * zero = 1 for ZERO entries.  Returns the run count. */
size_t nf_vmap_status_runs(const uint8_t *entries, size_t first, size_t n, uint64_t *out);

/* The hash list the map layer holds for a volume: SHARED entries give their digest,
 * every other entry the zero-block digest (zero_last for the last entry). */
void nf_vmap_ref_digests(const uint8_t *entries, size_t count, const uint8_t *zero_full,
                         const uint8_t *zero_last, uint8_t *out);

#endif
