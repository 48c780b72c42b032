/* BLAKE3 for nefeli, written from the BLAKE3 specification.
 *
 * Portable C plus SIMD back ends (SSE4.1, AVX2, AVX-512) chosen at run time
 * from CPUID/XGETBV.  Only the modes nefeli needs: plain hash and
 * derive-key, 32-byte (or longer, via XOF) output. */
#ifndef NF_BLAKE3_H
#define NF_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define NF_BLAKE3_OUT_LEN 32
#define NF_BLAKE3_KEY_LEN 32
#define NF_BLAKE3_BLOCK_LEN 64
#define NF_BLAKE3_CHUNK_LEN 1024
#define NF_BLAKE3_MAX_DEPTH 54

/* SIMD levels, lowest to highest. */
enum nf_blake3_simd {
    NF_BLAKE3_PORTABLE = 0,
    NF_BLAKE3_SSE41 = 1,
    NF_BLAKE3_AVX2 = 2,
    NF_BLAKE3_AVX512 = 3,
};

typedef struct {
    uint32_t cv[8];
    uint64_t chunk_counter;
    uint8_t buf[NF_BLAKE3_BLOCK_LEN];
    uint8_t buf_len;
    uint8_t blocks_compressed;
    uint8_t flags;
} nf_blake3_chunk_state;

typedef struct {
    uint32_t key[8];
    nf_blake3_chunk_state chunk;
    uint8_t cv_stack_len;
    uint8_t cv_stack[(NF_BLAKE3_MAX_DEPTH + 1) * NF_BLAKE3_OUT_LEN];
} nf_blake3_hasher;

/* Incremental interface. */
void nf_blake3_hasher_init(nf_blake3_hasher *self);
void nf_blake3_hasher_init_keyed(nf_blake3_hasher *self, const uint8_t key[NF_BLAKE3_KEY_LEN]);
void nf_blake3_hasher_init_derive_key(nf_blake3_hasher *self, const char *context);
/* derive-key with a key already derived from the context (see nf_blake3_context_key). */
void nf_blake3_hasher_init_derive_key_raw(nf_blake3_hasher *self, const uint8_t context_key[NF_BLAKE3_KEY_LEN]);
void nf_blake3_hasher_update(nf_blake3_hasher *self, const void *input, size_t input_len);
void nf_blake3_hasher_finalize(const nf_blake3_hasher *self, uint8_t *out, size_t out_len);

/* One-shot helpers. */
void nf_blake3_hash(const void *input, size_t input_len, uint8_t out[NF_BLAKE3_OUT_LEN]);
/* Key derived from a derive-key context string (hash of the context with the DERIVE_KEY_CONTEXT flag). */
void nf_blake3_context_key(const char *context, uint8_t out[NF_BLAKE3_KEY_LEN]);
/* derive_key(context, material) given the context key from nf_blake3_context_key. */
void nf_blake3_derive_key_raw(const uint8_t context_key[NF_BLAKE3_KEY_LEN], const void *material,
                              size_t material_len, uint8_t out[NF_BLAKE3_OUT_LEN]);
/* Many 64-byte inputs (for Merkle inner nodes): out[i] = derive_key_raw(context_key, in[64*i .. 64*i+64]).
 * Uses the SIMD many-inputs path. */
void nf_blake3_derive_key_raw_64_many(const uint8_t context_key[NF_BLAKE3_KEY_LEN], const uint8_t *inputs,
                                      size_t count, uint8_t *out);

/* Run-time dispatch: the level detected on this CPU, the level in use, and a way to force
 * a lower one (tests compare every back end the CPU supports).  Returns the level set, which
 * is min(requested, detected). */
int nf_blake3_simd_detected(void);
int nf_blake3_simd_current(void);
int nf_blake3_simd_force(int level);
const char *nf_blake3_simd_name(int level);

#endif
