/* Internal definitions shared by the BLAKE3 back ends (not part of the API).
 *
 * Every back end provides the same two kinds of primitive:
 *
 *   compress:   one 64-byte block through the compression function, either
 *               keeping the 8-word chaining value (in place) or producing the
 *               full 64-byte extended output (XOF);
 *   hash_many:  N independent inputs of `blocks` whole 64-byte blocks each
 *               (whole chunks, or 64-byte parent nodes), each chained from
 *               `key`, producing one 32-byte chaining value per input.  Input
 *               i uses block counter `counter + i` when `increment_counter`,
 *               else `counter`.  Block b of an input gets the flags
 *               `flags | (b == 0 ? flags_start : 0) | (b == blocks-1 ? flags_end : 0)`.
 */
#ifndef NF_BLAKE3_IMPL_H
#define NF_BLAKE3_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blake3.h"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#define NF_B3_X86 1
#else
#define NF_B3_X86 0
#endif

/* Domain-separation flags (the spec's table of flags). */
enum {
    NF_B3_CHUNK_START = 1 << 0,
    NF_B3_CHUNK_END = 1 << 1,
    NF_B3_PARENT = 1 << 2,
    NF_B3_ROOT = 1 << 3,
    NF_B3_KEYED_HASH = 1 << 4,
    NF_B3_DERIVE_KEY_CONTEXT = 1 << 5,
    NF_B3_DERIVE_KEY_MATERIAL = 1 << 6,
};

/* The most inputs any back end hashes at once (AVX-512: 16 lanes). */
#define NF_B3_MAX_SIMD_DEGREE 16

/* Initial chaining value: the first 32 bits of the fractional parts of the
 * square roots of the first 8 primes (same as SHA-256). */
static const uint32_t NF_B3_IV[8] = {
    0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
    0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
};

/* Message word order for each of the 7 rounds: row r is the permutation
 * (2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8) applied r times to 0..15. */
static const uint8_t NF_B3_SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t nf_b3_load32(const void *src) {
    const uint8_t *p = (const uint8_t *)src;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void nf_b3_store32(void *dst, uint32_t w) {
    uint8_t *p = (uint8_t *)dst;
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

static inline void nf_b3_load_key_words(const uint8_t key[32], uint32_t words[8]) {
    for (int i = 0; i < 8; i++) words[i] = nf_b3_load32(key + 4 * i);
}

static inline void nf_b3_store_cv_words(uint8_t out[32], const uint32_t cv[8]) {
    for (int i = 0; i < 8; i++) nf_b3_store32(out + 4 * i, cv[i]);
}

static inline uint32_t nf_b3_counter_low(uint64_t counter) { return (uint32_t)counter; }
static inline uint32_t nf_b3_counter_high(uint64_t counter) { return (uint32_t)(counter >> 32); }

/* ---- back ends ---------------------------------------------------------- */

/* Internal to the extension: keep these out of its dynamic symbol table. */
#if defined(__GNUC__)
#define NF_B3_INTERNAL __attribute__((visibility("hidden")))
#else
#define NF_B3_INTERNAL
#endif

NF_B3_INTERNAL void nf_b3_compress_in_place_portable(uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                                      uint8_t block_len, uint64_t counter, uint8_t flags);
NF_B3_INTERNAL void nf_b3_compress_xof_portable(const uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                                 uint8_t block_len, uint64_t counter, uint8_t flags, uint8_t out[64]);
NF_B3_INTERNAL void nf_b3_hash_many_portable(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                              const uint32_t key[8], uint64_t counter, bool increment_counter,
                              uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);

#if NF_B3_X86
NF_B3_INTERNAL void nf_b3_compress_in_place_sse41(uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                                   uint8_t block_len, uint64_t counter, uint8_t flags);
NF_B3_INTERNAL void nf_b3_compress_xof_sse41(const uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                              uint8_t block_len, uint64_t counter, uint8_t flags, uint8_t out[64]);
NF_B3_INTERNAL void nf_b3_hash_many_sse41(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                           const uint32_t key[8], uint64_t counter, bool increment_counter,
                           uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);

/* AVX2 has no single-block compress of its own: one block only fills 128-bit
 * rows, so the AVX2 level uses the SSE4.1 compress. */
NF_B3_INTERNAL void nf_b3_hash_many_avx2(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                          const uint32_t key[8], uint64_t counter, bool increment_counter,
                          uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);

/* AVX-512 (F + VL): single-block compress with native 128-bit rotates, and 16-way hash_many. */
NF_B3_INTERNAL void nf_b3_compress_in_place_avx512(uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                                    uint8_t block_len, uint64_t counter, uint8_t flags);
NF_B3_INTERNAL void nf_b3_compress_xof_avx512(const uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                               uint8_t block_len, uint64_t counter, uint8_t flags, uint8_t out[64]);
NF_B3_INTERNAL void nf_b3_hash_many_avx512(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                            const uint32_t key[8], uint64_t counter, bool increment_counter,
                            uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);
#endif

#endif
