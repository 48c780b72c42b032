/* BLAKE3 AVX-512 back end (AVX512F + AVX512VL): 16-way hash_many (16 inputs
 * in the 16 lanes of each state word), and the single-block compress on
 * 128-bit rows with the native VPRORD rotate.  Dispatched only where CPUID
 * reports avx512f and avx512vl (and avx2, used for the < 16 leftover inputs)
 * and XCR0 shows the OS saves the opmask and ZMM state. */
#include "blake3_impl.h"

#if NF_B3_X86

#pragma GCC target("avx512f,avx512vl")
#include <immintrin.h>

/* ---- single block (128-bit rows, AVX512VL rotates) ---------------------- */

#define NF_ROWS_PREFIX avx512_
#define NF_ROWS_ROT16(x) _mm_ror_epi32((x), 16)
#define NF_ROWS_ROT12(x) _mm_ror_epi32((x), 12)
#define NF_ROWS_ROT8(x) _mm_ror_epi32((x), 8)
#define NF_ROWS_ROT7(x) _mm_ror_epi32((x), 7)
#include "blake3_rows.h"

void nf_b3_compress_in_place_avx512(uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN], uint8_t block_len,
                                    uint64_t counter, uint8_t flags) {
    avx512_compress_in_place(cv, block, block_len, counter, flags);
}

void nf_b3_compress_xof_avx512(const uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN], uint8_t block_len,
                               uint64_t counter, uint8_t flags, uint8_t out[64]) {
    avx512_compress_xof(cv, block, block_len, counter, flags, out);
}

/* ---- 16-way ------------------------------------------------------------- */

#define ADD(a, b) _mm512_add_epi32(a, b)

/* Opaque to the optimiser: in a = a + m + b, keeps a + m (ready early) from being
 * regrouped as (a + b) + m, which lengthens the critical path (see blake3_avx2.c).
 * A no-op where the intrinsics are not the real ones (the emulated test build). */
#if defined(__GNUC__) && defined(__AVX512F__)
static inline __m512i keep(__m512i x) {
    __asm__("" : "+v"(x));
    return x;
}
#else
static inline __m512i keep(__m512i x) { return x; }
#endif
#define XOR(a, b) _mm512_xor_si512(a, b)
#define ROR(a, n) _mm512_ror_epi32(a, n)

#define G16(a, b, c, d, mx, my)                 \
    do {                                        \
        v[a] = ADD(keep(ADD(v[a], (mx))), v[b]); \
        v[d] = ROR(XOR(v[d], v[a]), 16);        \
        v[c] = ADD(v[c], v[d]);                 \
        v[b] = ROR(XOR(v[b], v[c]), 12);        \
        v[a] = ADD(keep(ADD(v[a], (my))), v[b]); \
        v[d] = ROR(XOR(v[d], v[a]), 8);         \
        v[c] = ADD(v[c], v[d]);                 \
        v[b] = ROR(XOR(v[b], v[c]), 7);         \
    } while (0)

static inline __attribute__((always_inline)) void round16(__m512i v[16], const __m512i m[16], int r) {
    const uint8_t *s = NF_B3_SCHEDULE[r];
    G16(0, 4, 8, 12, m[s[0]], m[s[1]]);
    G16(1, 5, 9, 13, m[s[2]], m[s[3]]);
    G16(2, 6, 10, 14, m[s[4]], m[s[5]]);
    G16(3, 7, 11, 15, m[s[6]], m[s[7]]);
    G16(0, 5, 10, 15, m[s[8]], m[s[9]]);
    G16(1, 6, 11, 12, m[s[10]], m[s[11]]);
    G16(2, 7, 8, 13, m[s[12]], m[s[13]]);
    G16(3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/* 16x16 transpose of 32-bit words: afterwards r[w] holds word w of every former r[i], in lane i.
 *
 * Lane numbering: 32-bit lanes 0..15; a "quarter" is a 128-bit lane (words 4q..4q+3).
 * 1. unpack{lo,hi}_epi32 of rows (2i, 2i+1): within each quarter q,
 *      lo = (a[4q], b[4q], a[4q+1], b[4q+1]),  hi = (a[4q+2], b[4q+2], a[4q+3], b[4q+3]).
 * 2. unpack{lo,hi}_epi64 of those for rows (4g..4g+3): u[4g+k] holds, in quarter q,
 *      rows 4g, 4g+1, 4g+2, 4g+3 at word 4q+k.
 * 3. word w = 4q+k of all 16 rows is quarter q of u[k], u[4+k], u[8+k], u[12+k]:
 *    a 4x4 transpose of quarters, done with two rounds of shuffle_i32x4. */
static inline __attribute__((always_inline)) void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {
        /* t[4g] = lo(r4g, r4g+1), t[4g+1] = hi(r4g, r4g+1), t[4g+2] = lo(r4g+2, r4g+3), t[4g+3] = hi(...) */
        u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]); /* word 4q+0 */
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]); /* word 4q+1 */
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]); /* word 4q+2 */
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]); /* word 4q+3 */
    }
    for (int k = 0; k < 4; k++) {
        const __m512i A = u[k], B = u[4 + k], C = u[8 + k], D = u[12 + k];
        /* shuffle_i32x4(x, y, imm): quarters 0,1 from x (imm bits 1:0, 3:2), 2,3 from y (5:4, 7:6) */
        __m512i p0 = _mm512_shuffle_i32x4(A, B, _MM_SHUFFLE(1, 0, 1, 0)); /* A0 A1 B0 B1 */
        __m512i p1 = _mm512_shuffle_i32x4(A, B, _MM_SHUFFLE(3, 2, 3, 2)); /* A2 A3 B2 B3 */
        __m512i p2 = _mm512_shuffle_i32x4(C, D, _MM_SHUFFLE(1, 0, 1, 0)); /* C0 C1 D0 D1 */
        __m512i p3 = _mm512_shuffle_i32x4(C, D, _MM_SHUFFLE(3, 2, 3, 2)); /* C2 C3 D2 D3 */
        r[0 + k] = _mm512_shuffle_i32x4(p0, p2, _MM_SHUFFLE(2, 0, 2, 0));  /* A0 B0 C0 D0: word k */
        r[4 + k] = _mm512_shuffle_i32x4(p0, p2, _MM_SHUFFLE(3, 1, 3, 1));  /* A1 B1 C1 D1: word 4+k */
        r[8 + k] = _mm512_shuffle_i32x4(p1, p3, _MM_SHUFFLE(2, 0, 2, 0));  /* A2 B2 C2 D2: word 8+k */
        r[12 + k] = _mm512_shuffle_i32x4(p1, p3, _MM_SHUFFLE(3, 1, 3, 1)); /* A3 B3 C3 D3: word 12+k */
    }
}

static void hash16(const uint8_t *const *inputs, size_t blocks, const uint32_t key[8], uint64_t counter,
                   bool increment_counter, uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
    __m512i h[8];
    for (int i = 0; i < 8; i++) h[i] = _mm512_set1_epi32((int)key[i]);
    uint32_t lo[16], hi[16];
    for (int j = 0; j < 16; j++) {
        uint64_t c = counter + (increment_counter ? (uint64_t)j : 0);
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    const __m512i ctr_lo = _mm512_loadu_si512((const void *)lo);
    const __m512i ctr_hi = _mm512_loadu_si512((const void *)hi);
    uint8_t block_flags = flags | flags_start;
    for (size_t b = 0; b < blocks; b++) {
        if (b + 1 == blocks) block_flags |= flags_end;
        __m512i m[16];
        for (int j = 0; j < 16; j++) m[j] = _mm512_loadu_si512((const void *)(inputs[j] + b * NF_BLAKE3_BLOCK_LEN));
        /* the same block of the inputs two batches ahead (see blake3_avx2.c) */
        for (int j = 0; j < 16; j++)
            _mm_prefetch((const char *)((uintptr_t)inputs[j] + (32 * blocks + b) * NF_BLAKE3_BLOCK_LEN), _MM_HINT_T0);
        transpose16(m);
        __m512i v[16] = {
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
            _mm512_set1_epi32((int)NF_B3_IV[0]), _mm512_set1_epi32((int)NF_B3_IV[1]),
            _mm512_set1_epi32((int)NF_B3_IV[2]), _mm512_set1_epi32((int)NF_B3_IV[3]),
            ctr_lo, ctr_hi, _mm512_set1_epi32(NF_BLAKE3_BLOCK_LEN), _mm512_set1_epi32(block_flags),
        };
        round16(v, m, 0);
        round16(v, m, 1);
        round16(v, m, 2);
        round16(v, m, 3);
        round16(v, m, 4);
        round16(v, m, 5);
        round16(v, m, 6);
        for (int i = 0; i < 8; i++) h[i] = XOR(v[i], v[i + 8]);
        block_flags = flags;
    }
    /* 8 rows of 16 lanes -> 16 outputs of 8 words: transpose as 16x16 with
     * 8 zero rows and keep the low 256 bits (words 0-7) of each result. */
    __m512i o[16];
    for (int i = 0; i < 8; i++) {
        o[i] = h[i];
        o[8 + i] = _mm512_setzero_si512();
    }
    transpose16(o);
    for (int j = 0; j < 16; j++) _mm256_storeu_si256((__m256i *)(out + 32 * j), _mm512_castsi512_si256(o[j]));
}

void nf_b3_hash_many_avx512(const uint8_t *const *inputs, size_t num_inputs, size_t blocks, const uint32_t key[8],
                            uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                            uint8_t flags_end, uint8_t *out) {
    while (num_inputs >= 16) {
        hash16(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end, out);
        if (increment_counter) counter += 16;
        inputs += 16;
        num_inputs -= 16;
        out += 16 * NF_BLAKE3_OUT_LEN;
    }
    if (num_inputs > 0)
        nf_b3_hash_many_avx2(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
                             flags_end, out);
}

#endif /* NF_B3_X86 */
