/* Single-block BLAKE3 compression on 128-bit rows, shared by the SSE4.1 and
 * AVX-512 back ends.  The including file selects the instruction set (its own
 * `#pragma GCC target`), includes <immintrin.h>, and defines
 *
 *   NF_ROWS_ROT16(x) NF_ROWS_ROT12(x) NF_ROWS_ROT8(x) NF_ROWS_ROT7(x)
 *
 * (32-bit right rotations of each lane of an __m128i) and NF_ROWS_PREFIX, a
 * token pasted onto the names of the static functions defined here.
 *
 * The state is four rows of the 4x4 word matrix:
 *   row0 = v0..v3, row1 = v4..v7, row2 = v8..v11, row3 = v12..v15.
 * A column step is one G on all four columns at once; the diagonal step first
 * rotates rows 1-3 left by 1, 2, 3 lanes so the diagonals line up as columns.
 *
 * The message words of a round are kept as four vectors
 *   X = (M0, M2, M4, M6)    Y = (M1, M3, M5, M7)      column step
 *   Z = (M8, M10, M12, M14) W = (M9, M11, M13, M15)   diagonal step
 * where M is the message permuted r times.  Since the next round's M is
 * M'[i] = M[P[i]] with P = (2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8):
 *   X' = (M2, M3, M7, M4)   = (X1, Y1, Y3, X2)
 *   Y' = (M6, M10, M0, M13) = (X3, Z1, X0, W2)
 *   Z' = (M1, M12, M9, M15) = (Y0, Z2, W0, W3)
 *   W' = (M11, M5, M14, M8) = (W1, Y2, Z3, Z0)
 * which costs a handful of shuffles per round instead of 16 word inserts. */
#ifndef NF_ROWS_PREFIX
#error "define NF_ROWS_PREFIX and the NF_ROWS_ROT* macros before including blake3_rows.h"
#endif

#define NF_ROWS_CAT2(a, b) a##b
#define NF_ROWS_CAT(a, b) NF_ROWS_CAT2(a, b)
#define NF_ROWS_FN(name) NF_ROWS_CAT(NF_ROWS_PREFIX, name)

/* (a[i], a[j], b[k], b[l]) on integer vectors. */
#define NF_ROWS_SHUFPS(a, b, imm) \
    _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), (imm)))

static inline __attribute__((always_inline)) void NF_ROWS_FN(g_half)(__m128i *r0, __m128i *r1, __m128i *r2,
                                                                     __m128i *r3, __m128i m, int first) {
    *r0 = _mm_add_epi32(_mm_add_epi32(*r0, m), *r1);
    *r3 = _mm_xor_si128(*r3, *r0);
    *r3 = first ? NF_ROWS_ROT16(*r3) : NF_ROWS_ROT8(*r3);
    *r2 = _mm_add_epi32(*r2, *r3);
    *r1 = _mm_xor_si128(*r1, *r2);
    *r1 = first ? NF_ROWS_ROT12(*r1) : NF_ROWS_ROT7(*r1);
}

static inline __attribute__((always_inline)) void NF_ROWS_FN(round)(__m128i *r0, __m128i *r1, __m128i *r2,
                                                                    __m128i *r3, __m128i x, __m128i y,
                                                                    __m128i z, __m128i w) {
    NF_ROWS_FN(g_half)(r0, r1, r2, r3, x, 1);
    NF_ROWS_FN(g_half)(r0, r1, r2, r3, y, 0);
    /* diagonalize: row1 <<< 1 lane, row2 <<< 2, row3 <<< 3 */
    *r1 = _mm_shuffle_epi32(*r1, _MM_SHUFFLE(0, 3, 2, 1));
    *r2 = _mm_shuffle_epi32(*r2, _MM_SHUFFLE(1, 0, 3, 2));
    *r3 = _mm_shuffle_epi32(*r3, _MM_SHUFFLE(2, 1, 0, 3));
    NF_ROWS_FN(g_half)(r0, r1, r2, r3, z, 1);
    NF_ROWS_FN(g_half)(r0, r1, r2, r3, w, 0);
    /* undiagonalize */
    *r1 = _mm_shuffle_epi32(*r1, _MM_SHUFFLE(2, 1, 0, 3));
    *r2 = _mm_shuffle_epi32(*r2, _MM_SHUFFLE(1, 0, 3, 2));
    *r3 = _mm_shuffle_epi32(*r3, _MM_SHUFFLE(0, 3, 2, 1));
}

static inline __attribute__((always_inline)) void NF_ROWS_FN(permute)(__m128i *x, __m128i *y, __m128i *z,
                                                                      __m128i *w) {
    const __m128i X = *x, Y = *y, Z = *z, W = *w;
    /* X' = (X1, Y1, Y3, X2): (X1, X2, Y1, Y3), then lanes 0,2,3,1 */
    __m128i t = NF_ROWS_SHUFPS(X, Y, _MM_SHUFFLE(3, 1, 2, 1));
    *x = _mm_shuffle_epi32(t, _MM_SHUFFLE(1, 3, 2, 0));
    /* Y' = (X3, Z1, X0, W2): (X3, X3, Z1, Z1) and (X0, X0, W2, W2), lanes 0,2 of each */
    __m128i a = NF_ROWS_SHUFPS(X, Z, _MM_SHUFFLE(1, 1, 3, 3));
    __m128i b = NF_ROWS_SHUFPS(X, W, _MM_SHUFFLE(2, 2, 0, 0));
    *y = NF_ROWS_SHUFPS(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    /* Z' = (Y0, Z2, W0, W3): (Y0, Y0, Z2, Z2), then lanes 0,2 of it and 0,3 of W */
    __m128i c = NF_ROWS_SHUFPS(Y, Z, _MM_SHUFFLE(2, 2, 0, 0));
    *z = NF_ROWS_SHUFPS(c, W, _MM_SHUFFLE(3, 0, 2, 0));
    /* W' = (W1, Y2, Z3, Z0): (W1, W1, Y2, Y2), then lanes 0,2 of it and 3,0 of Z */
    __m128i d = NF_ROWS_SHUFPS(W, Y, _MM_SHUFFLE(2, 2, 1, 1));
    *w = NF_ROWS_SHUFPS(d, Z, _MM_SHUFFLE(0, 3, 2, 0));
}

/* The 7 rounds; rows left before the feed-forward. */
static inline __attribute__((always_inline)) void NF_ROWS_FN(compress_rows)(__m128i rows[4], const uint32_t cv[8],
                                                                            const uint8_t block[64],
                                                                            uint8_t block_len, uint64_t counter,
                                                                            uint8_t flags) {
    __m128i r0 = _mm_loadu_si128((const __m128i *)cv);
    __m128i r1 = _mm_loadu_si128((const __m128i *)(cv + 4));
    __m128i r2 = _mm_setr_epi32((int)NF_B3_IV[0], (int)NF_B3_IV[1], (int)NF_B3_IV[2], (int)NF_B3_IV[3]);
    __m128i r3 = _mm_setr_epi32((int)nf_b3_counter_low(counter), (int)nf_b3_counter_high(counter),
                                (int)block_len, (int)flags);
    const __m128i q0 = _mm_loadu_si128((const __m128i *)block);
    const __m128i q1 = _mm_loadu_si128((const __m128i *)(block + 16));
    const __m128i q2 = _mm_loadu_si128((const __m128i *)(block + 32));
    const __m128i q3 = _mm_loadu_si128((const __m128i *)(block + 48));
    __m128i x = NF_ROWS_SHUFPS(q0, q1, _MM_SHUFFLE(2, 0, 2, 0)); /* m0 m2 m4 m6 */
    __m128i y = NF_ROWS_SHUFPS(q0, q1, _MM_SHUFFLE(3, 1, 3, 1)); /* m1 m3 m5 m7 */
    __m128i z = NF_ROWS_SHUFPS(q2, q3, _MM_SHUFFLE(2, 0, 2, 0)); /* m8 m10 m12 m14 */
    __m128i w = NF_ROWS_SHUFPS(q2, q3, _MM_SHUFFLE(3, 1, 3, 1)); /* m9 m11 m13 m15 */
    NF_ROWS_FN(round)(&r0, &r1, &r2, &r3, x, y, z, w);
    for (int r = 1; r < 7; r++) {
        NF_ROWS_FN(permute)(&x, &y, &z, &w);
        NF_ROWS_FN(round)(&r0, &r1, &r2, &r3, x, y, z, w);
    }
    rows[0] = r0;
    rows[1] = r1;
    rows[2] = r2;
    rows[3] = r3;
}

static void NF_ROWS_FN(compress_in_place)(uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
                                          uint64_t counter, uint8_t flags) {
    __m128i rows[4];
    NF_ROWS_FN(compress_rows)(rows, cv, block, block_len, counter, flags);
    _mm_storeu_si128((__m128i *)cv, _mm_xor_si128(rows[0], rows[2]));
    _mm_storeu_si128((__m128i *)(cv + 4), _mm_xor_si128(rows[1], rows[3]));
}

static void NF_ROWS_FN(compress_xof)(const uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
                                     uint64_t counter, uint8_t flags, uint8_t out[64]) {
    __m128i rows[4];
    NF_ROWS_FN(compress_rows)(rows, cv, block, block_len, counter, flags);
    _mm_storeu_si128((__m128i *)out, _mm_xor_si128(rows[0], rows[2]));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_xor_si128(rows[1], rows[3]));
    _mm_storeu_si128((__m128i *)(out + 32), _mm_xor_si128(rows[2], _mm_loadu_si128((const __m128i *)cv)));
    _mm_storeu_si128((__m128i *)(out + 48), _mm_xor_si128(rows[3], _mm_loadu_si128((const __m128i *)(cv + 4))));
}
