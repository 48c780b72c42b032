/* nefeli C core: see core.h.  Every function here has a pure-Python twin in
 * native/fallback.py and the tests hold the two to identical results. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "core.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blake3/blake3.h"

#define NF_MERKLE_NODE_CONTEXT "nefeli 2026 merkle node"
#define NF_OBJECT_ROOT_CONTEXT "nefeli 2026 object root"

void nf_sha256(const void *input, size_t input_len, uint8_t *out) {
    /* The low-level context calls go straight to libcrypto's block function (SHA
     * extensions where the CPU has them).  OpenSSL 3's one-shot SHA256() and EVP
     * both look the algorithm up on every call, which costs more than hashing a
     * 64-byte Merkle node. */
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, input, input_len);
    SHA256_Final(out, &ctx);
}

size_t nf_rstrip_zeros_len(const uint8_t *buf, size_t len) {
    size_t n = len;
    /* byte steps down to an 8-byte boundary of the address, then words */
    while (n > 0 && ((uintptr_t)(buf + n) & 7u) != 0) {
        if (buf[n - 1] != 0) return n;
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, buf + n - 8, 8);
        if (w != 0) break;
        n -= 8;
    }
    while (n > 0 && buf[n - 1] == 0) n--;
    return n;
}

int nf_is_zero(const uint8_t *buf, size_t len) {
    size_t i = 0;
    while (i < len && ((uintptr_t)(buf + i) & 7u) != 0) {
        if (buf[i]) return 0;
        i++;
    }
    /* OR 64 bytes at a time: the compiler vectorises this, and an early exit per
     * cache line keeps non-zero data cheap. */
    for (; i + 64 <= len; i += 64) {
        uint64_t acc = 0;
        for (int k = 0; k < 8; k++) {
            uint64_t w;
            memcpy(&w, buf + i + 8 * k, 8);
            acc |= w;
        }
        if (acc) return 0;
    }
    for (; i < len; i++)
        if (buf[i]) return 0;
    return 1;
}

size_t nf_zero_block_flags(const uint8_t *buf, size_t len, size_t block_size, uint8_t *flags) {
    if (block_size == 0) return 0;
    size_t count = (len + block_size - 1) / block_size;
    for (size_t i = 0; i < count; i++) {
        size_t off = i * block_size;
        size_t n = len - off < block_size ? len - off : block_size;
        flags[i] = (uint8_t)nf_is_zero(buf + off, n);
    }
    return count;
}

static void hash_block(int scheme, const uint8_t *block, size_t n, uint8_t *out) {
    if (scheme == NF_SCHEME_SHA256)
        nf_sha256(block, nf_rstrip_zeros_len(block, n), out);
    else
        nf_blake3_hash(block, n, out);
}

struct batch {
    int scheme;
    const uint8_t *buf;
    size_t len, block_size, count;
    uint8_t *out;
    int threads, index;
};

/* Thread k hashes a contiguous run of blocks: neighbours in memory stay on one core. */
static void *batch_worker(void *arg) {
    const struct batch *b = (const struct batch *)arg;
    size_t per = b->count / (size_t)b->threads, extra = b->count % (size_t)b->threads;
    size_t k = (size_t)b->index;
    size_t first = k * per + (k < extra ? k : extra);
    size_t last = first + per + (k < extra ? 1 : 0);
    for (size_t i = first; i < last; i++) {
        size_t off = i * b->block_size;
        size_t n = b->len - off < b->block_size ? b->len - off : b->block_size;
        hash_block(b->scheme, b->buf + off, n, b->out + i * NF_DIGEST_LEN);
    }
    return NULL;
}

int nf_block_digests(int scheme, const uint8_t *buf, size_t len, size_t block_size,
                     int threads, uint8_t *out) {
    if (block_size == 0 || (scheme != NF_SCHEME_SHA256 && scheme != NF_SCHEME_BLAKE3)) return -1;
    size_t count = (len + block_size - 1) / block_size;
    if (count == 0) return 0;
    if (threads < 1) threads = 1;
    if ((size_t)threads > count) threads = (int)count;
    if (threads > 256) threads = 256;

    struct batch jobs[256];
    pthread_t tids[256];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct batch){scheme, buf, len, block_size, count, out, threads, t};
    }
    int started = 1, rc = 0;
    for (int t = 1; t < threads; t++, started++) {
        if (pthread_create(&tids[t], NULL, batch_worker, &jobs[t]) != 0) {
            rc = -1;
            break;
        }
    }
    batch_worker(&jobs[0]);
    for (int t = 1; t < started; t++) pthread_join(tids[t], NULL);
    if (rc != 0) /* a thread could not start: hash its share here */
        for (int t = started; t < threads; t++) batch_worker(&jobs[t]);
    return 0;
}

/* SHA-256 of exactly 64 bytes (a Merkle node): two block transforms, the second over
 * the constant padding block, without the buffering of Update/Final. */
static void sha256_64(const uint8_t *in, uint8_t *out) {
    static const uint8_t pad[64] = {[0] = 0x80, [62] = 0x02}; /* 0x80, zeros, bit length 512 */
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Transform(&c, in);
    SHA256_Transform(&c, pad);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c.h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c.h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c.h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c.h[i];
    }
}

struct sha256_level {
    const uint8_t *src; /* 2 * (last - first) digests from pair `first` on */
    uint8_t *dst;
    size_t first, last;
};

static void *sha256_level_worker(void *arg) {
    const struct sha256_level *job = (const struct sha256_level *)arg;
    for (size_t i = job->first; i < job->last; i++)
        sha256_64(job->src + 2 * i * NF_DIGEST_LEN, job->dst + i * NF_DIGEST_LEN);
    return NULL;
}

/* Hash `pairs` consecutive 64-byte pairs of src into dst, over up to 4 threads for big levels. */
static void sha256_level(const uint8_t *src, size_t pairs, uint8_t *dst) {
    enum { MAX_THREADS = 4, MIN_PAIRS_PER_THREAD = 4096 };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = pairs / MIN_PAIRS_PER_THREAD;
    if (threads > (size_t)(cpus > 0 ? cpus : 1)) threads = (size_t)(cpus > 0 ? cpus : 1);
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads < 2) {
        struct sha256_level job = {src, dst, 0, pairs};
        sha256_level_worker(&job);
        return;
    }
    struct sha256_level jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (size_t t = 0; t < threads; t++)
        jobs[t] = (struct sha256_level){src, dst, pairs * t / threads, pairs * (t + 1) / threads};
    for (size_t t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, sha256_level_worker, &jobs[t]) == 0;
    sha256_level_worker(&jobs[0]);
    for (size_t t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            sha256_level_worker(&jobs[t]); /* no thread to be had: do its share here */
    }
}

void nf_merkle_sha256(const uint8_t *digests, size_t count, uint8_t *out) {
    if (count == 0) {
        nf_sha256("", 0, out);
        return;
    }
    if (count == 1) {
        memcpy(out, digests, NF_DIGEST_LEN);
        return;
    }
    /* Padding entries are zero digests; above level 0 a pair of padding nodes is
     * pad[l+1] = H(pad[l] || pad[l]), so only the real nodes need storage. */
    uint8_t pad[NF_DIGEST_LEN], pair[2 * NF_DIGEST_LEN];
    memset(pad, 0, sizeof pad);
    size_t cap = ((count + 1) / 2) * NF_DIGEST_LEN;
    uint8_t *bufs[2] = {malloc(cap), malloc(cap)};
    const uint8_t *src = digests;
    size_t n = count;
    int which = 0;
    size_t width = 1; /* padded width of the current level, a power of two >= n */
    while (width < n) width <<= 1;
    while (width > 1) {
        uint8_t *dst = bufs[which];
        size_t full = n / 2;
        sha256_level(src, full, dst);
        if (n & 1) { /* the last real node pairs with padding */
            memcpy(pair, src + (n - 1) * NF_DIGEST_LEN, NF_DIGEST_LEN);
            memcpy(pair + NF_DIGEST_LEN, pad, NF_DIGEST_LEN);
            sha256_64(pair, dst + full * NF_DIGEST_LEN);
        }
        memcpy(pair, pad, NF_DIGEST_LEN);
        memcpy(pair + NF_DIGEST_LEN, pad, NF_DIGEST_LEN);
        sha256_64(pair, pad);
        src = dst;
        n = (n + 1) / 2;
        width >>= 1;
        which ^= 1;
    }
    memcpy(out, src, NF_DIGEST_LEN);
    free(bufs[0]);
    free(bufs[1]);
}

static uint8_t merkle_node_key[NF_BLAKE3_KEY_LEN], object_root_key[NF_BLAKE3_KEY_LEN];
static pthread_once_t context_keys_once = PTHREAD_ONCE_INIT;

static void derive_context_keys(void) {
    nf_blake3_context_key(NF_MERKLE_NODE_CONTEXT, merkle_node_key);
    nf_blake3_context_key(NF_OBJECT_ROOT_CONTEXT, object_root_key);
}

void nf_merkle_blake3(const uint8_t *digests, size_t count, uint64_t size, uint8_t *out) {
    pthread_once(&context_keys_once, derive_context_keys);
    uint8_t material[8 + NF_DIGEST_LEN];
    for (int i = 0; i < 8; i++) material[i] = (uint8_t)(size >> (8 * i));
    memset(material + 8, 0, NF_DIGEST_LEN); /* empty object: 32 zero bytes */

    if (count == 1) {
        memcpy(material + 8, digests, NF_DIGEST_LEN);
    } else if (count > 1) {
        /* Each level is a packed digest array, so its pairs are consecutive 64-byte
         * inputs: one SIMD call hashes a whole level. */
        size_t cap = ((count + 1) / 2) * NF_DIGEST_LEN;
        uint8_t *bufs[2] = {malloc(cap), malloc(cap)};
        const uint8_t *src = digests;
        size_t n = count;
        int which = 0;
        while (n > 1) {
            size_t pairs = n / 2;
            uint8_t *dst = bufs[which];
            nf_blake3_derive_key_raw_64_many(merkle_node_key, src, pairs, dst);
            if (n & 1) /* an odd node at the end is carried up unchanged */
                memcpy(dst + pairs * NF_DIGEST_LEN, src + (n - 1) * NF_DIGEST_LEN, NF_DIGEST_LEN);
            n = pairs + (n & 1);
            src = dst;
            which ^= 1;
        }
        memcpy(material + 8, src, NF_DIGEST_LEN);
        free(bufs[0]);
        free(bufs[1]);
    }
    nf_blake3_derive_key_raw(object_root_key, material, sizeof material, out);
}
