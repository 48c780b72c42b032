/* The AVX-512 back end under emulated intrinsics (see immintrin.h here), compared with the
 * portable back end: compress, hash_many (any count, block count, counter carry, flags), the
 * hasher with 16-wide subtrees, and derive_key_raw_64_many.  Built and run by check.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blake3.h"
#include "blake3_impl.h"
static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static int fails = 0;
#define CHECK(c, ...) do { if (!(c)) { fails++; if (fails < 20) { printf("FAIL: " __VA_ARGS__); printf("\n"); } } } while (0)
static void hash_level(int lvl, const uint8_t *d, size_t n, uint8_t *out, size_t outlen, int split) {
    nf_blake3_simd_force(lvl);
    nf_blake3_hasher h; nf_blake3_hasher_init(&h);
    if (!split) nf_blake3_hasher_update(&h, d, n);
    else { size_t pos = 0; uint64_t save = rs; rs = 12345 + n; while (pos < n) { size_t step = 1 + rnd() % (split); if (step > n - pos) step = n - pos; nf_blake3_hasher_update(&h, d + pos, step); pos += step; } rs = save; }
    nf_blake3_hasher_finalize(&h, out, outlen);
}
int main(void) {
    size_t big = (1u << 20) + 12345;
    uint8_t *buf = malloc(big); for (size_t i = 0; i < big; i++) buf[i] = (uint8_t)rnd();
    uint32_t key[8]; for (int i = 0; i < 8; i++) key[i] = (uint32_t)rnd();
    printf("detected=%d (forced to avx512 in this harness)\n", nf_blake3_simd_detected());
    /* 1. compress */
    for (int t = 0; t < 5000; t++) {
        uint32_t cv1[8], cv2[8]; for (int i = 0; i < 8; i++) cv1[i] = cv2[i] = (uint32_t)rnd();
        uint8_t blk[64]; for (int i = 0; i < 64; i++) blk[i] = (uint8_t)rnd();
        uint8_t bl = (uint8_t)(rnd() % 65); uint64_t ctr = rnd(); uint8_t fl = (uint8_t)rnd();
        nf_b3_compress_in_place_portable(cv1, blk, bl, ctr, fl);
        nf_b3_compress_in_place_avx512(cv2, blk, bl, ctr, fl);
        CHECK(!memcmp(cv1, cv2, 32), "compress_in_place t=%d", t);
        uint8_t o1[64], o2[64];
        nf_b3_compress_xof_portable(cv1, blk, bl, ctr, fl, o1);
        nf_b3_compress_xof_avx512(cv1, blk, bl, ctr, fl, o2);
        CHECK(!memcmp(o1, o2, 64), "compress_xof t=%d", t);
    }
    /* 2. hash_many */
    const uint8_t *ptrs[64]; static uint8_t out1[64 * 32], out2[64 * 32];
    uint64_t ctrs[] = {0, 1, 5, 0xFFFFFFF0ull, 0xFFFFFFFFull, 0x1FFFFFFF8ull, 0xFFFFFFFFFFFFFFF8ull};
    for (int t = 0; t < 1500; t++) {
        size_t n = rnd() % 50, blocks = 1 + rnd() % 16;
        for (size_t i = 0; i < n; i++) ptrs[i] = buf + (rnd() % (big - 1024)); /* arbitrary, unaligned */
        uint64_t ctr = (t & 1) ? ctrs[rnd() % 7] : rnd();
        bool inc = rnd() & 1; uint8_t fl = (uint8_t)rnd(), fs = (uint8_t)rnd(), fe = (uint8_t)rnd();
        memset(out1, 0xAA, sizeof out1); memset(out2, 0xAA, sizeof out2);
        nf_b3_hash_many_portable(ptrs, n, blocks, key, ctr, inc, fl, fs, fe, out1);
        nf_b3_hash_many_avx512(ptrs, n, blocks, key, ctr, inc, fl, fs, fe, out2);
        CHECK(!memcmp(out1, out2, sizeof out1), "hash_many t=%d n=%zu blocks=%zu ctr=%llx inc=%d", t, n, blocks, (unsigned long long)ctr, inc);
    }
    /* 3. hasher at level 3 (16-wide subtrees) vs portable */
    size_t lens[] = {0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 2049, 3072, 3073, 4096, 4097, 5120, 5121, 6144, 6145, 7168, 7169, 8192, 8193,
                     15 * 1024, 16 * 1024, 16 * 1024 + 1, 17 * 1024, 31744, 32 * 1024 + 7, 102400, 1 << 20, (1 << 20) + 1, big};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int split = 0; split <= 70000; split += 35000) {
            uint8_t a[131], b[131];
            hash_level(0, buf, lens[k], a, 131, 0);
            hash_level(3, buf, lens[k], b, 131, split);
            CHECK(!memcmp(a, b, 131), "hasher len=%zu split=%d", lens[k], split);
        }
    }
    /* 4. derive_key_raw_64_many */
    {
        size_t cnt = 4099; uint8_t ck[32]; nf_blake3_context_key("nefeli 2026 merkle node", ck);
        uint8_t *o1 = malloc(cnt * 32), *o2 = malloc(cnt * 32);
        nf_blake3_simd_force(0); nf_blake3_derive_key_raw_64_many(ck, buf + 3, cnt, o1);
        nf_blake3_simd_force(3); nf_blake3_derive_key_raw_64_many(ck, buf + 3, cnt, o2);
        CHECK(!memcmp(o1, o2, cnt * 32), "derive_key_raw_64_many");
        uint8_t one[32]; nf_blake3_derive_key_raw(ck, buf + 3 + 64 * 77, 64, one);
        CHECK(!memcmp(one, o2 + 77 * 32, 32), "derive_key_raw_64_many vs single");
    }
    printf("current=%d %s; %s (%d failures)\n", nf_blake3_simd_current(), nf_blake3_simd_name(nf_blake3_simd_current()), fails ? "FAILED" : "all AVX-512 (emulated) checks passed", fails);
    return fails != 0;
}
