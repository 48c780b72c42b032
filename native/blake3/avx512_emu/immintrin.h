/* Plain-C stand-ins for exactly the intrinsics blake3_avx512.c (and blake3_rows.h) use,
 * written from the pseudo-code of Intel's intrinsics guide.  Test harness only: check.sh
 * compiles blake3_avx512.c against this header (its `#pragma GCC target` removed) so the
 * AVX-512 back end's logic (transposes, lane order, counters, flags) runs on any x86-64.
 * The semantics shared with SSE/AVX2 instructions (unpacks, shuffle_ps/epi32, rotations)
 * were checked against real hardware; shuffle_i32x4 follows the guide's definition:
 *   dst.q0 = a.q[imm[1:0]], dst.q1 = a.q[imm[3:2]], dst.q2 = b.q[imm[5:4]], dst.q3 = b.q[imm[7:6]]. */
#ifndef EMU_IMMINTRIN_H
#define EMU_IMMINTRIN_H
#include <stdint.h>
#include <string.h>
typedef struct { uint32_t w[4]; } __m128i;
typedef struct { uint32_t w[4]; } __m128;   /* bit patterns only */
typedef struct { uint32_t w[8]; } __m256i;
typedef struct { uint32_t w[16]; } __m512i;
#define _MM_SHUFFLE(z, y, x, w) (((z) << 6) | ((y) << 4) | ((x) << 2) | (w))
static inline uint32_t emu_ror(uint32_t x, unsigned n) { n &= 31; return n ? (x >> n) | (x << (32 - n)) : x; }
/* prefetch: a hint, nothing to emulate */
#define _MM_HINT_T0 3
static inline void _mm_prefetch(const char *p, int hint) { (void)p; (void)hint; }
/* 128 */
static inline __m128i _mm_loadu_si128(const __m128i *p) { __m128i r; memcpy(&r, p, 16); return r; }
static inline void _mm_storeu_si128(__m128i *p, __m128i a) { memcpy(p, &a, 16); }
static inline __m128i _mm_setr_epi32(int a, int b, int c, int d) { __m128i r = {{(uint32_t)a, (uint32_t)b, (uint32_t)c, (uint32_t)d}}; return r; }
static inline __m128i _mm_add_epi32(__m128i a, __m128i b) { for (int i = 0; i < 4; i++) a.w[i] += b.w[i]; return a; }
static inline __m128i _mm_xor_si128(__m128i a, __m128i b) { for (int i = 0; i < 4; i++) a.w[i] ^= b.w[i]; return a; }
static inline __m128i _mm_ror_epi32(__m128i a, int n) { for (int i = 0; i < 4; i++) a.w[i] = emu_ror(a.w[i], (unsigned)n); return a; }
static inline __m128i _mm_shuffle_epi32(__m128i a, int imm) { __m128i r; for (int i = 0; i < 4; i++) r.w[i] = a.w[(imm >> (2 * i)) & 3]; return r; }
static inline __m128 _mm_castsi128_ps(__m128i a) { __m128 r; memcpy(&r, &a, 16); return r; }
static inline __m128i _mm_castps_si128(__m128 a) { __m128i r; memcpy(&r, &a, 16); return r; }
static inline __m128 _mm_shuffle_ps(__m128 a, __m128 b, int imm) {
    __m128 r; r.w[0] = a.w[imm & 3]; r.w[1] = a.w[(imm >> 2) & 3]; r.w[2] = b.w[(imm >> 4) & 3]; r.w[3] = b.w[(imm >> 6) & 3]; return r; }
/* 256 */
static inline void _mm256_storeu_si256(__m256i *p, __m256i a) { memcpy(p, &a, 32); }
/* 512 */
static inline __m512i _mm512_loadu_si512(const void *p) { __m512i r; memcpy(&r, p, 64); return r; }
static inline __m512i _mm512_set1_epi32(int x) { __m512i r; for (int i = 0; i < 16; i++) r.w[i] = (uint32_t)x; return r; }
static inline __m512i _mm512_setzero_si512(void) { __m512i r; memset(&r, 0, 64); return r; }
static inline __m512i _mm512_add_epi32(__m512i a, __m512i b) { for (int i = 0; i < 16; i++) a.w[i] += b.w[i]; return a; }
static inline __m512i _mm512_xor_si512(__m512i a, __m512i b) { for (int i = 0; i < 16; i++) a.w[i] ^= b.w[i]; return a; }
static inline __m512i _mm512_ror_epi32(__m512i a, int n) { for (int i = 0; i < 16; i++) a.w[i] = emu_ror(a.w[i], (unsigned)n); return a; }
static inline __m512i _mm512_unpacklo_epi32(__m512i a, __m512i b) { __m512i r; for (int L = 0; L < 4; L++) {
    r.w[4*L+0] = a.w[4*L+0]; r.w[4*L+1] = b.w[4*L+0]; r.w[4*L+2] = a.w[4*L+1]; r.w[4*L+3] = b.w[4*L+1]; } return r; }
static inline __m512i _mm512_unpackhi_epi32(__m512i a, __m512i b) { __m512i r; for (int L = 0; L < 4; L++) {
    r.w[4*L+0] = a.w[4*L+2]; r.w[4*L+1] = b.w[4*L+2]; r.w[4*L+2] = a.w[4*L+3]; r.w[4*L+3] = b.w[4*L+3]; } return r; }
static inline __m512i _mm512_unpacklo_epi64(__m512i a, __m512i b) { __m512i r; for (int L = 0; L < 4; L++) {
    r.w[4*L+0] = a.w[4*L+0]; r.w[4*L+1] = a.w[4*L+1]; r.w[4*L+2] = b.w[4*L+0]; r.w[4*L+3] = b.w[4*L+1]; } return r; }
static inline __m512i _mm512_unpackhi_epi64(__m512i a, __m512i b) { __m512i r; for (int L = 0; L < 4; L++) {
    r.w[4*L+0] = a.w[4*L+2]; r.w[4*L+1] = a.w[4*L+3]; r.w[4*L+2] = b.w[4*L+2]; r.w[4*L+3] = b.w[4*L+3]; } return r; }
static inline __m512i _mm512_shuffle_i32x4(__m512i a, __m512i b, int imm) { __m512i r;
    memcpy(&r.w[0], &a.w[4 * (imm & 3)], 16); memcpy(&r.w[4], &a.w[4 * ((imm >> 2) & 3)], 16);
    memcpy(&r.w[8], &b.w[4 * ((imm >> 4) & 3)], 16); memcpy(&r.w[12], &b.w[4 * ((imm >> 6) & 3)], 16); return r; }
static inline __m256i _mm512_castsi512_si256(__m512i a) { __m256i r; memcpy(&r, &a, 32); return r; }
#endif
