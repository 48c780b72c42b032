/* BLAKE3 portable back end: plain C, one block at a time. */
#include "blake3_impl.h"

static inline uint32_t rotr32(uint32_t w, unsigned c) { return (w >> c) | (w << (32 - c)); }

/* The quarter-round G mixing one column or diagonal of the 4x4 state. */
#define G(a, b, c, d, mx, my)            \
    do {                                 \
        s[a] = s[a] + s[b] + (mx);       \
        s[d] = rotr32(s[d] ^ s[a], 16);  \
        s[c] = s[c] + s[d];              \
        s[b] = rotr32(s[b] ^ s[c], 12);  \
        s[a] = s[a] + s[b] + (my);       \
        s[d] = rotr32(s[d] ^ s[a], 8);   \
        s[c] = s[c] + s[d];              \
        s[b] = rotr32(s[b] ^ s[c], 7);   \
    } while (0)

static inline __attribute__((always_inline)) void round_fn(uint32_t s[16], const uint32_t m[16], int r) {
    const uint8_t *sc = NF_B3_SCHEDULE[r];
    /* columns */
    G(0, 4, 8, 12, m[sc[0]], m[sc[1]]);
    G(1, 5, 9, 13, m[sc[2]], m[sc[3]]);
    G(2, 6, 10, 14, m[sc[4]], m[sc[5]]);
    G(3, 7, 11, 15, m[sc[6]], m[sc[7]]);
    /* diagonals */
    G(0, 5, 10, 15, m[sc[8]], m[sc[9]]);
    G(1, 6, 11, 12, m[sc[10]], m[sc[11]]);
    G(2, 7, 8, 13, m[sc[12]], m[sc[13]]);
    G(3, 4, 9, 14, m[sc[14]], m[sc[15]]);
}

/* The 7 rounds; leaves the 16-word state before the feed-forward. */
static inline __attribute__((always_inline)) void compress_core(uint32_t s[16], const uint32_t cv[8], const uint8_t block[64],
                                 uint8_t block_len, uint64_t counter, uint8_t flags) {
    uint32_t m[16];
    for (int i = 0; i < 16; i++) m[i] = nf_b3_load32(block + 4 * i);
    for (int i = 0; i < 8; i++) s[i] = cv[i];
    s[8] = NF_B3_IV[0];
    s[9] = NF_B3_IV[1];
    s[10] = NF_B3_IV[2];
    s[11] = NF_B3_IV[3];
    s[12] = nf_b3_counter_low(counter);
    s[13] = nf_b3_counter_high(counter);
    s[14] = (uint32_t)block_len;
    s[15] = (uint32_t)flags;
    /* written out so each round's schedule row is a compile-time constant */
    round_fn(s, m, 0);
    round_fn(s, m, 1);
    round_fn(s, m, 2);
    round_fn(s, m, 3);
    round_fn(s, m, 4);
    round_fn(s, m, 5);
    round_fn(s, m, 6);
}

void nf_b3_compress_in_place_portable(uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                                      uint8_t block_len, uint64_t counter, uint8_t flags) {
    uint32_t s[16];
    compress_core(s, cv, block, block_len, counter, flags);
    for (int i = 0; i < 8; i++) cv[i] = s[i] ^ s[i + 8];
}

void nf_b3_compress_xof_portable(const uint32_t cv[8], const uint8_t block[NF_BLAKE3_BLOCK_LEN],
                                 uint8_t block_len, uint64_t counter, uint8_t flags, uint8_t out[64]) {
    uint32_t s[16];
    compress_core(s, cv, block, block_len, counter, flags);
    for (int i = 0; i < 8; i++) {
        nf_b3_store32(out + 4 * i, s[i] ^ s[i + 8]);
        nf_b3_store32(out + 32 + 4 * i, s[i + 8] ^ cv[i]);
    }
}

void nf_b3_hash_many_portable(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                              const uint32_t key[8], uint64_t counter, bool increment_counter,
                              uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
    for (size_t i = 0; i < num_inputs; i++) {
        uint32_t cv[8];
        memcpy(cv, key, sizeof cv);
        const uint8_t *in = inputs[i];
        uint8_t block_flags = flags | flags_start;
        for (size_t b = 0; b < blocks; b++) {
            if (b + 1 == blocks) block_flags |= flags_end;
            nf_b3_compress_in_place_portable(cv, in + b * NF_BLAKE3_BLOCK_LEN, NF_BLAKE3_BLOCK_LEN,
                                             counter, block_flags);
            block_flags = flags;
        }
        nf_b3_store_cv_words(out + i * NF_BLAKE3_OUT_LEN, cv);
        if (increment_counter) counter++;
    }
}
