/* BLAKE3 AVX2 back end: 8-way hash_many (8 inputs in the 8 lanes of each
 * state word).  Single blocks use the SSE4.1 compress (see blake3_impl.h). */
#include "blake3_impl.h"

#if NF_B3_X86

#pragma GCC target("avx2")
#include <immintrin.h>

/* Byte shuffles for the rotations by 16 and 8 (VPSHUFB: byte i of each 128-bit
 * half takes byte mask[i] of that half). */
static const uint8_t ROT16_MASK[32] __attribute__((aligned(32))) = {
    2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
    2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
};
static const uint8_t ROT8_MASK[32] __attribute__((aligned(32))) = {
    1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
    1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
};

/* With the masks as intrinsic operands GCC keeps both in registers for the
 * whole loop, and the 16 state vectors then spill far more (measured: ~12%
 * slower).  A VPSHUFB with the mask as a memory operand leaves all 16 YMM
 * registers to the state; the asm has no side effects, so it still schedules
 * freely. */
#if defined(__GNUC__)
static inline __m256i rot16(__m256i x) {
    __m256i r;
    __asm__("vpshufb %1, %2, %0" : "=x"(r) : "m"(*(const __m256i *)ROT16_MASK), "x"(x));
    return r;
}
static inline __m256i rot8(__m256i x) {
    __m256i r;
    __asm__("vpshufb %1, %2, %0" : "=x"(r) : "m"(*(const __m256i *)ROT8_MASK), "x"(x));
    return r;
}
#else
static inline __m256i rot16(__m256i x) { return _mm256_shuffle_epi8(x, _mm256_load_si256((const __m256i *)ROT16_MASK)); }
static inline __m256i rot8(__m256i x) { return _mm256_shuffle_epi8(x, _mm256_load_si256((const __m256i *)ROT8_MASK)); }
#endif
static inline __m256i rot12(__m256i x) {
    return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}
static inline __m256i rot7(__m256i x) { return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25)); }

#define ADD(a, b) _mm256_add_epi32(a, b)

/* An empty asm the optimiser cannot see through.  In a = a + m + b, a + m
 * is ready long before b (the end of the previous step's dependency chain);
 * GCC's reassociation would otherwise regroup it as (a + b) + m, putting one
 * more add on the critical path (measured: ~5% slower). */
static inline __m256i keep(__m256i x) {
#if defined(__GNUC__)
    __asm__("" : "+x"(x));
#endif
    return x;
}
#define XOR(a, b) _mm256_xor_si256(a, b)

#define G8(a, b, c, d, mx, my)              \
    do {                                    \
        v[a] = ADD(keep(ADD(v[a], (mx))), v[b]); \
        v[d] = rot16(XOR(v[d], v[a]));      \
        v[c] = ADD(v[c], v[d]);             \
        v[b] = rot12(XOR(v[b], v[c]));      \
        v[a] = ADD(keep(ADD(v[a], (my))), v[b]); \
        v[d] = rot8(XOR(v[d], v[a]));       \
        v[c] = ADD(v[c], v[d]);             \
        v[b] = rot7(XOR(v[b], v[c]));       \
        v[a] = keep(v[a]);                  \
        v[b] = keep(v[b]);                  \
        v[c] = keep(v[c]);                  \
        v[d] = keep(v[d]);                  \
    } while (0)

/* One round.  Each G is written out whole: GCC does not schedule before
 * register allocation, so source order sets register pressure; the CPU
 * overlaps the four independent G of a step by itself.
 *
 * The keep() at the end of each G splits the live ranges of its four words:
 * a word that is idle for a while after its G can then be spilled without
 * its last uses inside the G going through memory too (GCC otherwise stored
 * some words and reloaded them on the very next instruction, a store-forward
 * stall on the critical path; ~3% faster). */
static inline __attribute__((always_inline)) void round8(__m256i v[16], const __m256i m[16], int r) {
    const uint8_t *s = NF_B3_SCHEDULE[r];
    G8(0, 4, 8, 12, m[s[0]], m[s[1]]);
    G8(1, 5, 9, 13, m[s[2]], m[s[3]]);
    G8(2, 6, 10, 14, m[s[4]], m[s[5]]);
    G8(3, 7, 11, 15, m[s[6]], m[s[7]]);
    G8(0, 5, 10, 15, m[s[8]], m[s[9]]);
    G8(1, 6, 11, 12, m[s[10]], m[s[11]]);
    G8(2, 7, 8, 13, m[s[12]], m[s[13]]);
    G8(3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/* 8x8 transpose of 32-bit words: afterwards r[w] holds word w of every former r[i], lane i. */
static inline __attribute__((always_inline)) void transpose8(__m256i r[8]) {
    /* within 128-bit halves: pairs of rows, then quads */
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]); /* r0[0] r1[0] r0[1] r1[1] | same for words 4,5 */
    __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]); /* words 2,3 | 6,7 */
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    __m256i t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    __m256i t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2); /* rows 0-3 word 0 | word 4 */
    __m256i u1 = _mm256_unpackhi_epi64(t0, t2); /* word 1 | word 5 */
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3); /* word 2 | word 6 */
    __m256i u3 = _mm256_unpackhi_epi64(t1, t3); /* word 3 | word 7 */
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6); /* rows 4-7 */
    __m256i u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7);
    __m256i u7 = _mm256_unpackhi_epi64(t5, t7);
    /* then the 128-bit halves: low halves give words 0-3, high halves words 4-7 */
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* Two 4x4 transposes of 32-bit words, one per 128-bit half. */
static inline __attribute__((always_inline)) void transpose4x2(__m256i *a, __m256i *b, __m256i *c, __m256i *d) {
    __m256i ab_lo = _mm256_unpacklo_epi32(*a, *b); /* a0 b0 a1 b1 */
    __m256i ab_hi = _mm256_unpackhi_epi32(*a, *b); /* a2 b2 a3 b3 */
    __m256i cd_lo = _mm256_unpacklo_epi32(*c, *d);
    __m256i cd_hi = _mm256_unpackhi_epi32(*c, *d);
    *a = _mm256_unpacklo_epi64(ab_lo, cd_lo); /* a0 b0 c0 d0 */
    *b = _mm256_unpackhi_epi64(ab_lo, cd_lo);
    *c = _mm256_unpacklo_epi64(ab_hi, cd_hi);
    *d = _mm256_unpackhi_epi64(ab_hi, cd_hi);
}

/* m[w] = word w of the block at `off` of each of the 8 inputs.  Row j of each
 * group of four words pairs input j (low half) with input j+4 (high half), so
 * a 4x4 transpose within the halves finishes the job without lane crossing. */
static inline __attribute__((always_inline)) void load_msg8(const uint8_t *const *in, size_t off, __m256i m[16]) {
    for (int g = 0; g < 4; g++) {
        __m256i r[4];
        for (int j = 0; j < 4; j++)
            r[j] = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(in[j] + off + 16 * g))),
                _mm_loadu_si128((const __m128i *)(in[j + 4] + off + 16 * g)), 1);
        transpose4x2(&r[0], &r[1], &r[2], &r[3]);
        /* written once, transposed (writing m first and transposing in place
         * left GCC storing every vector twice) */
        for (int j = 0; j < 4; j++) m[4 * g + j] = r[j];
    }
}

/* How far ahead to prefetch, in inputs: hash_many's inputs are consecutive
 * chunks (or consecutive parent blocks), so input j + PREFETCH_INPUTS starts
 * PREFETCH_INPUTS inputs further on.  Each block step prefetches the same
 * block of the inputs two batches ahead: memory latency is hidden without
 * flooding the fill buffers.  (PREFETCH never faults, so prefetching past the
 * end of the data is harmless; the address is formed as an integer.) */
#define PREFETCH_INPUTS 16

static void hash8(const uint8_t *const *inputs, size_t blocks, const uint32_t key[8], uint64_t counter,
                  bool increment_counter, uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
    __m256i h[8];
    for (int i = 0; i < 8; i++) h[i] = _mm256_set1_epi32((int)key[i]);
    uint32_t lo[8], hi[8];
    for (int j = 0; j < 8; j++) {
        uint64_t c = counter + (increment_counter ? (uint64_t)j : 0);
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    const __m256i ctr_lo = _mm256_loadu_si256((const __m256i *)lo);
    const __m256i ctr_hi = _mm256_loadu_si256((const __m256i *)hi);
    const uint8_t *in[8];
    for (int j = 0; j < 8; j++) in[j] = inputs[j];
    uint8_t block_flags = flags | flags_start;
    for (size_t b = 0; b < blocks; b++) {
        if (b + 1 == blocks) block_flags |= flags_end;
        __m256i m[16];
        load_msg8(in, b * NF_BLAKE3_BLOCK_LEN, m);
#if defined(__GNUC__)
        /* Make m live in memory: the rounds then read each word as a memory
         * operand, and GCC stops keeping a second, spilled copy (~2%). */
        __asm__("" : : "r"(m) : "memory");
#endif
        for (int j = 0; j < 8; j++)
            _mm_prefetch((const char *)((uintptr_t)in[j] + (PREFETCH_INPUTS * blocks + b) * NF_BLAKE3_BLOCK_LEN), _MM_HINT_T0);
        __m256i v[16] = {
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
            _mm256_set1_epi32((int)NF_B3_IV[0]), _mm256_set1_epi32((int)NF_B3_IV[1]),
            _mm256_set1_epi32((int)NF_B3_IV[2]), _mm256_set1_epi32((int)NF_B3_IV[3]),
            ctr_lo, ctr_hi, _mm256_set1_epi32(NF_BLAKE3_BLOCK_LEN), _mm256_set1_epi32(block_flags),
        };
        round8(v, m, 0);
        round8(v, m, 1);
        round8(v, m, 2);
        round8(v, m, 3);
        round8(v, m, 4);
        round8(v, m, 5);
        round8(v, m, 6);
        for (int i = 0; i < 8; i++) h[i] = XOR(v[i], v[i + 8]);
        block_flags = flags;
    }
    transpose8(h);
    for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)(out + 32 * j), h[j]);
}

void nf_b3_hash_many_avx2(const uint8_t *const *inputs, size_t num_inputs, size_t blocks, const uint32_t key[8],
                          uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                          uint8_t flags_end, uint8_t *out) {
    while (num_inputs >= 8) {
        hash8(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end, out);
        if (increment_counter) counter += 8;
        inputs += 8;
        num_inputs -= 8;
        out += 8 * NF_BLAKE3_OUT_LEN;
    }
    if (num_inputs > 0)
        nf_b3_hash_many_sse41(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
                              flags_end, out);
}

#endif /* NF_B3_X86 */
