/* nefeli C core: batch block hashing, Merkle top hashes, zero detection.
 * BLAKE3 lives in blake3/, SHA-256 comes from OpenSSL's libcrypto. */
#ifndef NF_CORE_H
#define NF_CORE_H

#include <stddef.h>
#include <stdint.h>

#define NF_SCHEME_SHA256 1
#define NF_SCHEME_BLAKE3 2
#define NF_DIGEST_LEN 32

void nf_sha256(const void *input, size_t input_len, uint8_t *out);

/* Length of buf once its trailing zero bytes are removed. */
size_t nf_rstrip_zeros_len(const uint8_t *buf, size_t len);
/* 1 when every byte of buf is zero (an empty buffer is zero). */
int nf_is_zero(const uint8_t *buf, size_t len);
/* flags[i] = 1 when block i of buf is all zero; returns the number of blocks. */
size_t nf_zero_block_flags(const uint8_t *buf, size_t len, size_t block_size, uint8_t *flags);

/* Digests of every block of buf (ceil(len / block_size) of them, 32 bytes each, into out),
 * over `threads` threads.  sha256: trailing zeros of each block are stripped before hashing
 * (the Pithos rule).  Returns 0, or -1 on a bad argument or thread failure. */
int nf_block_digests(int scheme, const uint8_t *buf, size_t len, size_t block_size,
                     int threads, uint8_t *out);

/* Pithos top hash: pad to a power of two with zero digests, hash pairs. */
void nf_merkle_sha256(const uint8_t *digests, size_t count, uint8_t *out);
/* nefeli top hash: BLAKE3 derive-key tree, size bound into the root. */
void nf_merkle_blake3(const uint8_t *digests, size_t count, uint64_t size, uint8_t *out);

#endif
