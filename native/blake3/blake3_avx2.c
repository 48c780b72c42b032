/* BLAKE3 AVX2 back end: 8-way hash_many (8 inputs in the 8 lanes of each
 * state word).  Single blocks use the SSE4.1 compress (see blake3_impl.h). */
#include "blake3_impl.h"

#if NF_B3_X86

#pragma GCC target("avx2")
#include <immintrin.h>

static inline __m256i rot16(__m256i x) {
    return _mm256_shuffle_epi8(x, _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                                   2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
}
static inline __m256i rot8(__m256i x) {
    return _mm256_shuffle_epi8(x, _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
                                                   1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12));
}
static inline __m256i rot12(__m256i x) {
    return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}
static inline __m256i rot7(__m256i x) { return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25)); }

#define ADD(a, b) _mm256_add_epi32(a, b)
#define XOR(a, b) _mm256_xor_si256(a, b)

/* One round, written step by step across the four columns (then the four
 * diagonals) so that four independent dependency chains are interleaved. */
static inline __attribute__((always_inline)) void round8(__m256i v[16], const __m256i m[16], int r) {
    const uint8_t *s = NF_B3_SCHEDULE[r];
    /* columns: (0,4,8,12) (1,5,9,13) (2,6,10,14) (3,7,11,15) */
    v[0] = ADD(ADD(v[0], m[s[0]]), v[4]);
    v[1] = ADD(ADD(v[1], m[s[2]]), v[5]);
    v[2] = ADD(ADD(v[2], m[s[4]]), v[6]);
    v[3] = ADD(ADD(v[3], m[s[6]]), v[7]);
    v[12] = rot16(XOR(v[12], v[0]));
    v[13] = rot16(XOR(v[13], v[1]));
    v[14] = rot16(XOR(v[14], v[2]));
    v[15] = rot16(XOR(v[15], v[3]));
    v[8] = ADD(v[8], v[12]);
    v[9] = ADD(v[9], v[13]);
    v[10] = ADD(v[10], v[14]);
    v[11] = ADD(v[11], v[15]);
    v[4] = rot12(XOR(v[4], v[8]));
    v[5] = rot12(XOR(v[5], v[9]));
    v[6] = rot12(XOR(v[6], v[10]));
    v[7] = rot12(XOR(v[7], v[11]));
    v[0] = ADD(ADD(v[0], m[s[1]]), v[4]);
    v[1] = ADD(ADD(v[1], m[s[3]]), v[5]);
    v[2] = ADD(ADD(v[2], m[s[5]]), v[6]);
    v[3] = ADD(ADD(v[3], m[s[7]]), v[7]);
    v[12] = rot8(XOR(v[12], v[0]));
    v[13] = rot8(XOR(v[13], v[1]));
    v[14] = rot8(XOR(v[14], v[2]));
    v[15] = rot8(XOR(v[15], v[3]));
    v[8] = ADD(v[8], v[12]);
    v[9] = ADD(v[9], v[13]);
    v[10] = ADD(v[10], v[14]);
    v[11] = ADD(v[11], v[15]);
    v[4] = rot7(XOR(v[4], v[8]));
    v[5] = rot7(XOR(v[5], v[9]));
    v[6] = rot7(XOR(v[6], v[10]));
    v[7] = rot7(XOR(v[7], v[11]));
    /* diagonals: (0,5,10,15) (1,6,11,12) (2,7,8,13) (3,4,9,14) */
    v[0] = ADD(ADD(v[0], m[s[8]]), v[5]);
    v[1] = ADD(ADD(v[1], m[s[10]]), v[6]);
    v[2] = ADD(ADD(v[2], m[s[12]]), v[7]);
    v[3] = ADD(ADD(v[3], m[s[14]]), v[4]);
    v[15] = rot16(XOR(v[15], v[0]));
    v[12] = rot16(XOR(v[12], v[1]));
    v[13] = rot16(XOR(v[13], v[2]));
    v[14] = rot16(XOR(v[14], v[3]));
    v[10] = ADD(v[10], v[15]);
    v[11] = ADD(v[11], v[12]);
    v[8] = ADD(v[8], v[13]);
    v[9] = ADD(v[9], v[14]);
    v[5] = rot12(XOR(v[5], v[10]));
    v[6] = rot12(XOR(v[6], v[11]));
    v[7] = rot12(XOR(v[7], v[8]));
    v[4] = rot12(XOR(v[4], v[9]));
    v[0] = ADD(ADD(v[0], m[s[9]]), v[5]);
    v[1] = ADD(ADD(v[1], m[s[11]]), v[6]);
    v[2] = ADD(ADD(v[2], m[s[13]]), v[7]);
    v[3] = ADD(ADD(v[3], m[s[15]]), v[4]);
    v[15] = rot8(XOR(v[15], v[0]));
    v[12] = rot8(XOR(v[12], v[1]));
    v[13] = rot8(XOR(v[13], v[2]));
    v[14] = rot8(XOR(v[14], v[3]));
    v[10] = ADD(v[10], v[15]);
    v[11] = ADD(v[11], v[12]);
    v[8] = ADD(v[8], v[13]);
    v[9] = ADD(v[9], v[14]);
    v[5] = rot7(XOR(v[5], v[10]));
    v[6] = rot7(XOR(v[6], v[11]));
    v[7] = rot7(XOR(v[7], v[8]));
    v[4] = rot7(XOR(v[4], v[9]));
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

/* m[w] = word w of the block at `off` of each of the 8 inputs. */
static inline __attribute__((always_inline)) void load_msg8(const uint8_t *const *in, size_t off, __m256i m[16]) {
    for (int half = 0; half < 2; half++) {
        for (int j = 0; j < 8; j++)
            m[8 * half + j] = _mm256_loadu_si256((const __m256i *)(in[j] + off + 32 * half));
        for (int j = 4 * half; j < 4 * half + 4; j++) _mm_prefetch((const char *)(in[j] + off + 256), _MM_HINT_T0);
        transpose8(&m[8 * half]);
    }
}

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
