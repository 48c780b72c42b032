/* BLAKE3 SSE4.1 back end: single-block compress on 128-bit rows, and 4-way
 * hash_many (4 inputs in the 4 lanes of each state word). */
#include "blake3_impl.h"

#if NF_B3_X86

#pragma GCC target("sse4.1")
#include <immintrin.h>

static const uint8_t ROT16_MASK[16] __attribute__((aligned(16))) = {2, 3, 0, 1, 6, 7, 4, 5,
                                                                    10, 11, 8, 9, 14, 15, 12, 13};
static const uint8_t ROT8_MASK[16] __attribute__((aligned(16))) = {1, 2, 3, 0, 5, 6, 7, 4,
                                                                   9, 10, 11, 8, 13, 14, 15, 12};

/* PSHUFB with the mask as a memory operand, so that the 4-way state keeps all
 * 16 XMM registers (see blake3_avx2.c for the measurements behind this). */
#if defined(__GNUC__)
/* VEX form when the whole build targets AVX (mixing legacy SSE into VEX code costs) */
#if defined(__AVX__)
#define NF_PSHUFB "vpshufb %1, %0, %0"
#else
#define NF_PSHUFB "pshufb %1, %0"
#endif
static inline __m128i rot16(__m128i x) {
    __asm__(NF_PSHUFB : "+x"(x) : "m"(*(const __m128i *)ROT16_MASK));
    return x;
}
static inline __m128i rot8(__m128i x) {
    __asm__(NF_PSHUFB : "+x"(x) : "m"(*(const __m128i *)ROT8_MASK));
    return x;
}
/* Opaque to the optimiser: keeps (a + m) + b from being regrouped as (a + b) + m. */
static inline __m128i keep(__m128i x) {
    __asm__("" : "+x"(x));
    return x;
}
#else
static inline __m128i rot16(__m128i x) { return _mm_shuffle_epi8(x, _mm_load_si128((const __m128i *)ROT16_MASK)); }
static inline __m128i rot8(__m128i x) { return _mm_shuffle_epi8(x, _mm_load_si128((const __m128i *)ROT8_MASK)); }
static inline __m128i keep(__m128i x) { return x; }
#endif
static inline __m128i rot12(__m128i x) { return _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20)); }
static inline __m128i rot7(__m128i x) { return _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25)); }

#define NF_ROWS_PREFIX sse41_
#define NF_ROWS_ROT16(x) rot16(x)
#define NF_ROWS_ROT12(x) rot12(x)
#define NF_ROWS_ROT8(x) rot8(x)
#define NF_ROWS_ROT7(x) rot7(x)
#include "blake3_rows.h"

void nf_b3_compress_in_place_sse41(uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN], uint8_t block_len,
                                   uint64_t counter, uint8_t flags) {
    sse41_compress_in_place(cv, block, block_len, counter, flags);
}

void nf_b3_compress_xof_sse41(const uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN], uint8_t block_len,
                              uint64_t counter, uint8_t flags, uint8_t out[64]) {
    sse41_compress_xof(cv, block, block_len, counter, flags, out);
}

/* ---- 4-way -------------------------------------------------------------- */

#define G4(a, b, c, d, mx, my)                         \
    do {                                               \
        v[a] = _mm_add_epi32(keep(_mm_add_epi32(v[a], (mx))), v[b]); \
        v[d] = rot16(_mm_xor_si128(v[d], v[a]));       \
        v[c] = _mm_add_epi32(v[c], v[d]);              \
        v[b] = rot12(_mm_xor_si128(v[b], v[c]));       \
        v[a] = _mm_add_epi32(keep(_mm_add_epi32(v[a], (my))), v[b]); \
        v[d] = rot8(_mm_xor_si128(v[d], v[a]));        \
        v[c] = _mm_add_epi32(v[c], v[d]);              \
        v[b] = rot7(_mm_xor_si128(v[b], v[c]));        \
        v[a] = keep(v[a]);                             \
        v[b] = keep(v[b]);                             \
        v[c] = keep(v[c]);                             \
        v[d] = keep(v[d]);                             \
    } while (0)

/* One round, each G written out whole; the keep() calls split live ranges
 * so that GCC's spills stay off the G's own critical path (see blake3_avx2.c). */
static inline __attribute__((always_inline)) void round4(__m128i v[16], const __m128i m[16], int r) {
    const uint8_t *s = NF_B3_SCHEDULE[r];
    G4(0, 4, 8, 12, m[s[0]], m[s[1]]);
    G4(1, 5, 9, 13, m[s[2]], m[s[3]]);
    G4(2, 6, 10, 14, m[s[4]], m[s[5]]);
    G4(3, 7, 11, 15, m[s[6]], m[s[7]]);
    G4(0, 5, 10, 15, m[s[8]], m[s[9]]);
    G4(1, 6, 11, 12, m[s[10]], m[s[11]]);
    G4(2, 7, 8, 13, m[s[12]], m[s[13]]);
    G4(3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/* 4x4 transpose of 32-bit words. */
static inline __attribute__((always_inline)) void transpose4(__m128i *a, __m128i *b, __m128i *c, __m128i *d) {
    __m128i ab_lo = _mm_unpacklo_epi32(*a, *b); /* a0 b0 a1 b1 */
    __m128i ab_hi = _mm_unpackhi_epi32(*a, *b); /* a2 b2 a3 b3 */
    __m128i cd_lo = _mm_unpacklo_epi32(*c, *d);
    __m128i cd_hi = _mm_unpackhi_epi32(*c, *d);
    *a = _mm_unpacklo_epi64(ab_lo, cd_lo); /* a0 b0 c0 d0 */
    *b = _mm_unpackhi_epi64(ab_lo, cd_lo); /* a1 b1 c1 d1 */
    *c = _mm_unpacklo_epi64(ab_hi, cd_hi);
    *d = _mm_unpackhi_epi64(ab_hi, cd_hi);
}

/* m[w] = word w of the block at `off` of each of the 4 inputs. */
static inline __attribute__((always_inline)) void load_msg4(const uint8_t *const *in, size_t off, __m128i m[16]) {
    for (int g = 0; g < 4; g++) {
        __m128i r0 = _mm_loadu_si128((const __m128i *)(in[0] + off + 16 * g));
        __m128i r1 = _mm_loadu_si128((const __m128i *)(in[1] + off + 16 * g));
        __m128i r2 = _mm_loadu_si128((const __m128i *)(in[2] + off + 16 * g));
        __m128i r3 = _mm_loadu_si128((const __m128i *)(in[3] + off + 16 * g));
        transpose4(&r0, &r1, &r2, &r3);
        m[4 * g + 0] = r0;
        m[4 * g + 1] = r1;
        m[4 * g + 2] = r2;
        m[4 * g + 3] = r3;
    }
}

/* Inputs ahead to prefetch (see blake3_avx2.c). */
#define PREFETCH_INPUTS 8

static void hash4(const uint8_t *const *inputs, size_t blocks, const uint32_t key[8], uint64_t counter,
                  bool increment_counter, uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
    __m128i h[8];
    for (int i = 0; i < 8; i++) h[i] = _mm_set1_epi32((int)key[i]);
    uint64_t c[4];
    for (int j = 0; j < 4; j++) c[j] = counter + (increment_counter ? (uint64_t)j : 0);
    const __m128i ctr_lo = _mm_setr_epi32((int)(uint32_t)c[0], (int)(uint32_t)c[1], (int)(uint32_t)c[2],
                                          (int)(uint32_t)c[3]);
    const __m128i ctr_hi = _mm_setr_epi32((int)(uint32_t)(c[0] >> 32), (int)(uint32_t)(c[1] >> 32),
                                          (int)(uint32_t)(c[2] >> 32), (int)(uint32_t)(c[3] >> 32));
    uint8_t block_flags = flags | flags_start;
    for (size_t b = 0; b < blocks; b++) {
        if (b + 1 == blocks) block_flags |= flags_end;
        __m128i m[16];
        load_msg4(inputs, b * NF_BLAKE3_BLOCK_LEN, m);
        for (int j = 0; j < 4; j++)
            _mm_prefetch((const char *)((uintptr_t)inputs[j] + (PREFETCH_INPUTS * blocks + b) * NF_BLAKE3_BLOCK_LEN), _MM_HINT_T0);
#if defined(__GNUC__)
        __asm__("" : : "r"(m) : "memory"); /* m in memory: read as operands, no second copy */
#endif
        __m128i v[16] = {
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
            _mm_set1_epi32((int)NF_B3_IV[0]), _mm_set1_epi32((int)NF_B3_IV[1]),
            _mm_set1_epi32((int)NF_B3_IV[2]), _mm_set1_epi32((int)NF_B3_IV[3]),
            ctr_lo, ctr_hi, _mm_set1_epi32(NF_BLAKE3_BLOCK_LEN), _mm_set1_epi32(block_flags),
        };
        round4(v, m, 0);
        round4(v, m, 1);
        round4(v, m, 2);
        round4(v, m, 3);
        round4(v, m, 4);
        round4(v, m, 5);
        round4(v, m, 6);
        for (int i = 0; i < 8; i++) h[i] = _mm_xor_si128(v[i], v[i + 8]);
        block_flags = flags;
    }
    transpose4(&h[0], &h[1], &h[2], &h[3]);
    transpose4(&h[4], &h[5], &h[6], &h[7]);
    for (int j = 0; j < 4; j++) {
        _mm_storeu_si128((__m128i *)(out + 32 * j), h[j]);
        _mm_storeu_si128((__m128i *)(out + 32 * j + 16), h[4 + j]);
    }
}

static void hash_one(const uint8_t *in, size_t blocks, const uint32_t key[8], uint64_t counter, uint8_t flags,
                     uint8_t flags_start, uint8_t flags_end, uint8_t out[32]) {
    uint32_t cv[8];
    memcpy(cv, key, sizeof cv);
    uint8_t block_flags = flags | flags_start;
    for (size_t b = 0; b < blocks; b++) {
        if (b + 1 == blocks) block_flags |= flags_end;
        sse41_compress_in_place(cv, in + b * NF_BLAKE3_BLOCK_LEN, NF_BLAKE3_BLOCK_LEN, counter, block_flags);
        block_flags = flags;
    }
    memcpy(out, cv, 32); /* x86 is little-endian */
}

void nf_b3_hash_many_sse41(const uint8_t *const *inputs, size_t num_inputs, size_t blocks, const uint32_t key[8],
                           uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                           uint8_t flags_end, uint8_t *out) {
    while (num_inputs >= 4) {
        hash4(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end, out);
        if (increment_counter) counter += 4;
        inputs += 4;
        num_inputs -= 4;
        out += 4 * NF_BLAKE3_OUT_LEN;
    }
    while (num_inputs > 0) {
        hash_one(inputs[0], blocks, key, counter, flags, flags_start, flags_end, out);
        if (increment_counter) counter++;
        inputs++;
        num_inputs--;
        out += NF_BLAKE3_OUT_LEN;
    }
}

#endif /* NF_B3_X86 */
