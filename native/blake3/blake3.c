/* BLAKE3: run-time dispatch, the chunk state, the hasher (with the
 * many-chunks subtree path for large updates) and the one-shot helpers. */
#include "blake3_impl.h"

#if NF_B3_X86
#include <cpuid.h>
#endif

/* ---- run-time dispatch -------------------------------------------------- */

static int g_detected = -1; /* accessed with __atomic builtins */
static int g_current = -1;

#if NF_B3_X86
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static int detect_level(void) {
#if NF_B3_X86
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return NF_BLAKE3_PORTABLE;
    const int has_ssse3 = (ecx >> 9) & 1, has_sse41 = (ecx >> 19) & 1;
    const int has_osxsave = (ecx >> 27) & 1, has_avx = (ecx >> 28) & 1;
    if (!(has_ssse3 && has_sse41)) return NF_BLAKE3_PORTABLE;
    int level = NF_BLAKE3_SSE41;
    if (!(has_osxsave && has_avx)) return level;
    const uint64_t xcr0 = read_xcr0();
    /* The OS must save XMM (bit 1) and YMM (bit 2) state for AVX2 ... */
    if ((xcr0 & 0x6) != 0x6) return level;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) return level;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const int has_avx2 = (ebx >> 5) & 1, has_avx512f = (ebx >> 16) & 1, has_avx512vl = (ebx >> 31) & 1;
    if (!has_avx2) return level;
    level = NF_BLAKE3_AVX2;
    /* ... and opmask (5), upper ZMM0-15 (6) and ZMM16-31 (7) state for AVX-512. */
    if (has_avx512f && has_avx512vl && (xcr0 & 0xE6) == 0xE6) level = NF_BLAKE3_AVX512;
    return level;
#else
    return NF_BLAKE3_PORTABLE;
#endif
}

int nf_blake3_simd_detected(void) {
    int d = __atomic_load_n(&g_detected, __ATOMIC_RELAXED);
    if (d < 0) {
        d = detect_level();
        __atomic_store_n(&g_detected, d, __ATOMIC_RELAXED);
    }
    return d;
}

int nf_blake3_simd_current(void) {
    int c = __atomic_load_n(&g_current, __ATOMIC_RELAXED);
    if (c < 0) {
        c = nf_blake3_simd_detected();
        /* A concurrent nf_blake3_simd_force wins over this first-use default. */
        int expected = -1;
        if (!__atomic_compare_exchange_n(&g_current, &expected, c, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            c = expected;
    }
    return c;
}

int nf_blake3_simd_force(int level) {
    int d = nf_blake3_simd_detected();
    if (level > d) level = d;
    if (level < NF_BLAKE3_PORTABLE) level = NF_BLAKE3_PORTABLE;
    __atomic_store_n(&g_current, level, __ATOMIC_RELAXED);
    return level;
}

const char *nf_blake3_simd_name(int level) {
    switch (level) {
    case NF_BLAKE3_PORTABLE: return "portable";
    case NF_BLAKE3_SSE41: return "sse41";
    case NF_BLAKE3_AVX2: return "avx2";
    case NF_BLAKE3_AVX512: return "avx512";
    default: return "unknown";
    }
}

/* Inputs hashed at once by hash_many at a level (the portable loop takes 1). */
static inline size_t simd_degree(int level) {
    switch (level) {
    case NF_BLAKE3_SSE41: return 4;
    case NF_BLAKE3_AVX2: return 8;
    case NF_BLAKE3_AVX512: return 16;
    default: return 1;
    }
}

static inline void compress_in_place(int level, uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
                                     uint64_t counter, uint8_t flags) {
#if NF_B3_X86
    if (level >= NF_BLAKE3_AVX512) {
        nf_b3_compress_in_place_avx512(cv, block, block_len, counter, flags);
        return;
    }
    if (level >= NF_BLAKE3_SSE41) {
        nf_b3_compress_in_place_sse41(cv, block, block_len, counter, flags);
        return;
    }
#endif
    (void)level;
    nf_b3_compress_in_place_portable(cv, block, block_len, counter, flags);
}

static inline void compress_xof(int level, const uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
                                uint64_t counter, uint8_t flags, uint8_t out[64]) {
#if NF_B3_X86
    if (level >= NF_BLAKE3_AVX512) {
        nf_b3_compress_xof_avx512(cv, block, block_len, counter, flags, out);
        return;
    }
    if (level >= NF_BLAKE3_SSE41) {
        nf_b3_compress_xof_sse41(cv, block, block_len, counter, flags, out);
        return;
    }
#endif
    (void)level;
    nf_b3_compress_xof_portable(cv, block, block_len, counter, flags, out);
}

static inline void hash_many(int level, const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                             const uint32_t key[8], uint64_t counter, bool increment_counter, uint8_t flags,
                             uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
#if NF_B3_X86
    switch (level) {
    case NF_BLAKE3_AVX512:
        nf_b3_hash_many_avx512(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
                               flags_end, out);
        return;
    case NF_BLAKE3_AVX2:
        nf_b3_hash_many_avx2(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
                             flags_end, out);
        return;
    case NF_BLAKE3_SSE41:
        nf_b3_hash_many_sse41(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
                              flags_end, out);
        return;
    default: break;
    }
#endif
    nf_b3_hash_many_portable(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
                             flags_end, out);
}

/* ---- chunk state and outputs -------------------------------------------- */

static void chunk_init(nf_blake3_chunk_state *cs, const uint32_t key[8], uint64_t chunk_counter, uint8_t flags) {
    memcpy(cs->cv, key, sizeof cs->cv);
    cs->chunk_counter = chunk_counter;
    memset(cs->buf, 0, sizeof cs->buf);
    cs->buf_len = 0;
    cs->blocks_compressed = 0;
    cs->flags = flags;
}

static inline size_t chunk_len(const nf_blake3_chunk_state *cs) {
    return (size_t)cs->blocks_compressed * NF_BLAKE3_BLOCK_LEN + cs->buf_len;
}

static inline uint8_t chunk_start_flag(const nf_blake3_chunk_state *cs) {
    return cs->blocks_compressed == 0 ? NF_B3_CHUNK_START : 0;
}

/* Absorb input into the chunk (the caller never passes more than fits in it).
 * A full buffered block is compressed only once more input follows it, so the
 * last block always stays buffered for the CHUNK_END (and maybe ROOT) flags. */
static void chunk_update(int level, nf_blake3_chunk_state *cs, const uint8_t *in, size_t len) {
    if (cs->buf_len > 0) {
        size_t take = NF_BLAKE3_BLOCK_LEN - cs->buf_len;
        if (take > len) take = len;
        memcpy(cs->buf + cs->buf_len, in, take);
        cs->buf_len += (uint8_t)take;
        in += take;
        len -= take;
        if (len == 0) return;
        compress_in_place(level, cs->cv, cs->buf, NF_BLAKE3_BLOCK_LEN, cs->chunk_counter,
                          cs->flags | chunk_start_flag(cs));
        cs->blocks_compressed++;
        cs->buf_len = 0;
        memset(cs->buf, 0, sizeof cs->buf);
    }
    while (len > NF_BLAKE3_BLOCK_LEN) {
        compress_in_place(level, cs->cv, in, NF_BLAKE3_BLOCK_LEN, cs->chunk_counter,
                          cs->flags | chunk_start_flag(cs));
        cs->blocks_compressed++;
        in += NF_BLAKE3_BLOCK_LEN;
        len -= NF_BLAKE3_BLOCK_LEN;
    }
    memcpy(cs->buf, in, len);
    cs->buf_len = (uint8_t)len;
}

/* The last compression of a node, kept unevaluated: as a chaining value for a
 * non-root node, or as the root's extended output. */
typedef struct {
    uint32_t cv[8];
    uint8_t block[NF_BLAKE3_BLOCK_LEN];
    uint64_t counter;
    uint8_t block_len;
    uint8_t flags;
} output_t;

static output_t chunk_output(const nf_blake3_chunk_state *cs) {
    output_t o;
    memcpy(o.cv, cs->cv, sizeof o.cv);
    memcpy(o.block, cs->buf, sizeof o.block); /* bytes past buf_len are zero */
    o.counter = cs->chunk_counter;
    o.block_len = cs->buf_len;
    o.flags = cs->flags | chunk_start_flag(cs) | NF_B3_CHUNK_END;
    return o;
}

static output_t parent_output(const uint8_t left_cv[32], const uint8_t right_cv[32], const uint32_t key[8],
                              uint8_t flags) {
    output_t o;
    memcpy(o.cv, key, sizeof o.cv);
    memcpy(o.block, left_cv, 32);
    memcpy(o.block + 32, right_cv, 32);
    o.counter = 0;
    o.block_len = NF_BLAKE3_BLOCK_LEN;
    o.flags = flags | NF_B3_PARENT;
    return o;
}

static void output_cv(int level, const output_t *o, uint8_t out[32]) {
    uint32_t cv[8];
    memcpy(cv, o->cv, sizeof cv);
    compress_in_place(level, cv, o->block, o->block_len, o->counter, o->flags);
    nf_b3_store_cv_words(out, cv);
}

/* The root node's output stream: block i of it is the root compression with counter i. */
static void output_root_bytes(int level, const output_t *o, uint8_t *out, size_t out_len) {
    uint64_t block_counter = 0;
    uint8_t tmp[64];
    while (out_len > 0) {
        if (out_len >= 64) {
            compress_xof(level, o->cv, o->block, o->block_len, block_counter, o->flags | NF_B3_ROOT, out);
            out += 64;
            out_len -= 64;
        } else {
            compress_xof(level, o->cv, o->block, o->block_len, block_counter, o->flags | NF_B3_ROOT, tmp);
            memcpy(out, tmp, out_len);
            out_len = 0;
        }
        block_counter++;
    }
}

/* ---- many chunks at once: the subtree path ------------------------------ */

/* Chaining values of the chunks of `in` (at most `simd_degree` whole chunks plus
 * maybe one partial chunk), chunk counters from `counter`; returns how many. */
static size_t chunks_cvs(int level, const uint8_t *in, size_t len, const uint32_t key[8], uint64_t counter,
                         uint8_t flags, uint8_t *out) {
    const uint8_t *ptrs[NF_B3_MAX_SIMD_DEGREE];
    size_t n = 0;
    while (len - n * NF_BLAKE3_CHUNK_LEN >= NF_BLAKE3_CHUNK_LEN) {
        ptrs[n] = in + n * NF_BLAKE3_CHUNK_LEN;
        n++;
    }
    hash_many(level, ptrs, n, NF_BLAKE3_CHUNK_LEN / NF_BLAKE3_BLOCK_LEN, key, counter, true, flags,
              NF_B3_CHUNK_START, NF_B3_CHUNK_END, out);
    size_t rest = len - n * NF_BLAKE3_CHUNK_LEN;
    if (rest > 0) {
        nf_blake3_chunk_state cs;
        chunk_init(&cs, key, counter + n, flags);
        chunk_update(level, &cs, in + n * NF_BLAKE3_CHUNK_LEN, rest);
        output_t o = chunk_output(&cs);
        output_cv(level, &o, out + n * NF_BLAKE3_OUT_LEN);
        n++;
    }
    return n;
}

/* Parent chaining values of adjacent pairs of `n` CVs; an odd last CV is
 * passed through unchanged.  Returns the number of CVs written. */
static size_t parents_cvs(int level, const uint8_t *cvs, size_t n, const uint32_t key[8], uint8_t flags,
                          uint8_t *out) {
    const uint8_t *ptrs[NF_B3_MAX_SIMD_DEGREE];
    size_t pairs = n / 2;
    for (size_t i = 0; i < pairs; i++) ptrs[i] = cvs + 2 * i * NF_BLAKE3_OUT_LEN;
    hash_many(level, ptrs, pairs, 1, key, 0, false, flags | NF_B3_PARENT, 0, 0, out);
    if (n & 1) {
        memcpy(out + pairs * NF_BLAKE3_OUT_LEN, cvs + (n - 1) * NF_BLAKE3_OUT_LEN, NF_BLAKE3_OUT_LEN);
        return pairs + 1;
    }
    return pairs;
}

/* Largest power of two strictly less than x (x >= 2). */
static inline uint64_t pow2_below(uint64_t x) { return (uint64_t)1 << (63 - __builtin_clzll(x - 1)); }

/* The top layer of the subtree of `len` bytes (> 0) starting at chunk `counter`:
 * at most max(degree, 2) chaining values, as a left-balanced tree of that
 * subtree would have them after merging every level below.  A run of a power
 * of two of at least `degree` whole chunks gives exactly max(degree, 2) CVs.
 * The layers below are hashed `degree` inputs at a time. */
static size_t subtree_cvs(int level, size_t degree, const uint8_t *in, size_t len, const uint32_t key[8],
                          uint64_t counter, uint8_t flags, uint8_t *out) {
    if (len <= degree * NF_BLAKE3_CHUNK_LEN) return chunks_cvs(level, in, len, key, counter, flags, out);
    /* Left subtree: the largest power of two of chunks that leaves a non-empty right. */
    size_t left_len = (size_t)pow2_below((len + NF_BLAKE3_CHUNK_LEN - 1) / NF_BLAKE3_CHUNK_LEN) * NF_BLAKE3_CHUNK_LEN;
    uint8_t cvs[2 * NF_B3_MAX_SIMD_DEGREE * NF_BLAKE3_OUT_LEN];
    size_t n_left = subtree_cvs(level, degree, in, left_len, key, counter, flags, cvs);
    size_t n_right = subtree_cvs(level, degree, in + left_len, len - left_len, key,
                                 counter + left_len / NF_BLAKE3_CHUNK_LEN, flags, cvs + n_left * NF_BLAKE3_OUT_LEN);
    if (n_left == 1) {
        /* degree 1: both sides are single chunks; they are the two CVs. */
        memcpy(out, cvs, 2 * NF_BLAKE3_OUT_LEN);
        return 2;
    }
    return parents_cvs(level, cvs, n_left + n_right, key, flags, out);
}

/* The two children of the root of a subtree of more than one chunk. */
static void subtree_children(int level, const uint8_t *in, size_t len, const uint32_t key[8], uint64_t counter,
                             uint8_t flags, uint8_t out[2 * NF_BLAKE3_OUT_LEN]) {
    size_t degree = simd_degree(level);
    uint8_t cvs[NF_B3_MAX_SIMD_DEGREE * NF_BLAKE3_OUT_LEN];
    uint8_t tmp[NF_B3_MAX_SIMD_DEGREE * NF_BLAKE3_OUT_LEN];
    size_t n = subtree_cvs(level, degree, in, len, key, counter, flags, cvs);
    while (n > 2) {
        n = parents_cvs(level, cvs, n, key, flags, tmp);
        memcpy(cvs, tmp, n * NF_BLAKE3_OUT_LEN);
    }
    memcpy(out, cvs, 2 * NF_BLAKE3_OUT_LEN);
}

/* ---- the hasher --------------------------------------------------------- */

static void hasher_init_words(nf_blake3_hasher *self, const uint32_t key[8], uint8_t flags) {
    memcpy(self->key, key, sizeof self->key);
    chunk_init(&self->chunk, key, 0, flags);
    self->cv_stack_len = 0;
}

void nf_blake3_hasher_init(nf_blake3_hasher *self) { hasher_init_words(self, NF_B3_IV, 0); }

void nf_blake3_hasher_init_keyed(nf_blake3_hasher *self, const uint8_t key[NF_BLAKE3_KEY_LEN]) {
    uint32_t words[8];
    nf_b3_load_key_words(key, words);
    hasher_init_words(self, words, NF_B3_KEYED_HASH);
}

void nf_blake3_hasher_init_derive_key_raw(nf_blake3_hasher *self, const uint8_t context_key[NF_BLAKE3_KEY_LEN]) {
    uint32_t words[8];
    nf_b3_load_key_words(context_key, words);
    hasher_init_words(self, words, NF_B3_DERIVE_KEY_MATERIAL);
}

void nf_blake3_context_key(const char *context, uint8_t out[NF_BLAKE3_KEY_LEN]) {
    nf_blake3_hasher h;
    hasher_init_words(&h, NF_B3_IV, NF_B3_DERIVE_KEY_CONTEXT);
    nf_blake3_hasher_update(&h, context, strlen(context));
    nf_blake3_hasher_finalize(&h, out, NF_BLAKE3_KEY_LEN);
}

void nf_blake3_hasher_init_derive_key(nf_blake3_hasher *self, const char *context) {
    uint8_t key[NF_BLAKE3_KEY_LEN];
    nf_blake3_context_key(context, key);
    nf_blake3_hasher_init_derive_key_raw(self, key);
}

/* Merge the CV stack down to one entry per 1 bit of `total_chunks`, the number
 * of chunks that are complete so far.  Called only when more input is known to
 * follow, so none of these merges is the root. */
static void merge_cv_stack(int level, nf_blake3_hasher *self, uint64_t total_chunks) {
    size_t keep = (size_t)__builtin_popcountll(total_chunks);
    while (self->cv_stack_len > keep) {
        uint8_t *left = self->cv_stack + (self->cv_stack_len - 2) * NF_BLAKE3_OUT_LEN;
        output_t o = parent_output(left, left + NF_BLAKE3_OUT_LEN, self->key, self->chunk.flags);
        output_cv(level, &o, left);
        self->cv_stack_len--;
    }
}

/* Push the CV of the subtree starting at chunk `chunk_counter`.  Merging is lazy:
 * the entries are merged only when a later CV arrives, because the latest one
 * could turn out to be a child of the root. */
static void push_cv(int level, nf_blake3_hasher *self, const uint8_t cv[32], uint64_t chunk_counter) {
    merge_cv_stack(level, self, chunk_counter);
    memcpy(self->cv_stack + self->cv_stack_len * NF_BLAKE3_OUT_LEN, cv, NF_BLAKE3_OUT_LEN);
    self->cv_stack_len++;
}

void nf_blake3_hasher_update(nf_blake3_hasher *self, const void *input, size_t input_len) {
    if (input_len == 0) return;
    const int level = nf_blake3_simd_current();
    const uint8_t *in = (const uint8_t *)input;
    nf_blake3_chunk_state *cs = &self->chunk;

    /* 1. Finish a partly filled chunk; push it once input follows it. */
    if (chunk_len(cs) > 0) {
        size_t take = NF_BLAKE3_CHUNK_LEN - chunk_len(cs);
        if (take > input_len) take = input_len;
        chunk_update(level, cs, in, take);
        in += take;
        input_len -= take;
        if (input_len == 0) return;
        output_t o = chunk_output(cs);
        uint8_t cv[32];
        output_cv(level, &o, cv);
        push_cv(level, self, cv, cs->chunk_counter);
        chunk_init(cs, self->key, cs->chunk_counter + 1, cs->flags);
    }

    /* 2. Whole subtrees: as many chunks as possible at once, a power of two of
     * them, aligned to the chunk count so far so the subtree is a node of the
     * final tree.  The last chunk(s) of the input may be taken here too; the
     * subtree's two children are pushed, not merged, so the root stays open. */
    while (input_len > NF_BLAKE3_CHUNK_LEN) {
        uint64_t sub_len = (uint64_t)1 << (63 - __builtin_clzll((uint64_t)input_len));
        const uint64_t done_bytes = cs->chunk_counter * NF_BLAKE3_CHUNK_LEN;
        while ((done_bytes & (sub_len - 1)) != 0) sub_len >>= 1;
        const uint64_t sub_chunks = sub_len / NF_BLAKE3_CHUNK_LEN;
        if (sub_chunks <= 1) {
            nf_blake3_chunk_state one;
            chunk_init(&one, self->key, cs->chunk_counter, cs->flags);
            chunk_update(level, &one, in, NF_BLAKE3_CHUNK_LEN);
            output_t o = chunk_output(&one);
            uint8_t cv[32];
            output_cv(level, &o, cv);
            push_cv(level, self, cv, cs->chunk_counter);
        } else {
            uint8_t pair[2 * NF_BLAKE3_OUT_LEN];
            subtree_children(level, in, (size_t)sub_len, self->key, cs->chunk_counter, cs->flags, pair);
            push_cv(level, self, pair, cs->chunk_counter);
            push_cv(level, self, pair + NF_BLAKE3_OUT_LEN, cs->chunk_counter + sub_chunks / 2);
        }
        cs->chunk_counter += sub_chunks;
        in += sub_len;
        input_len -= (size_t)sub_len;
    }

    /* 3. The rest (at most one chunk) goes to the chunk state; the stack can then
     * be merged, as those merges are known not to be the root. */
    if (input_len > 0) {
        chunk_update(level, cs, in, input_len);
        merge_cv_stack(level, self, cs->chunk_counter);
    }
}

void nf_blake3_hasher_finalize(const nf_blake3_hasher *self, uint8_t *out, size_t out_len) {
    if (out_len == 0) return;
    const int level = nf_blake3_simd_current();
    output_t o;
    size_t i;
    if (self->cv_stack_len == 0) {
        /* a single chunk (maybe empty) is the root */
        o = chunk_output(&self->chunk);
        output_root_bytes(level, &o, out, out_len);
        return;
    }
    if (chunk_len(&self->chunk) > 0) {
        o = chunk_output(&self->chunk);
        i = self->cv_stack_len;
    } else {
        /* The input ended on a subtree boundary: the top of the stack is the
         * rightmost node; it has at least one left sibling below it. */
        i = self->cv_stack_len - 2;
        o = parent_output(self->cv_stack + i * NF_BLAKE3_OUT_LEN, self->cv_stack + (i + 1) * NF_BLAKE3_OUT_LEN,
                          self->key, self->chunk.flags);
    }
    /* Roll up from the right: every entry left in the stack is a left sibling. */
    while (i > 0) {
        i--;
        uint8_t right[32];
        output_cv(level, &o, right);
        o = parent_output(self->cv_stack + i * NF_BLAKE3_OUT_LEN, right, self->key, self->chunk.flags);
    }
    output_root_bytes(level, &o, out, out_len);
}

/* ---- one-shot helpers --------------------------------------------------- */

void nf_blake3_hash(const void *input, size_t input_len, uint8_t out[NF_BLAKE3_OUT_LEN]) {
    nf_blake3_hasher h;
    nf_blake3_hasher_init(&h);
    nf_blake3_hasher_update(&h, input, input_len);
    nf_blake3_hasher_finalize(&h, out, NF_BLAKE3_OUT_LEN);
}

void nf_blake3_derive_key_raw(const uint8_t context_key[NF_BLAKE3_KEY_LEN], const void *material,
                              size_t material_len, uint8_t out[NF_BLAKE3_OUT_LEN]) {
    nf_blake3_hasher h;
    nf_blake3_hasher_init_derive_key_raw(&h, context_key);
    nf_blake3_hasher_update(&h, material, material_len);
    nf_blake3_hasher_finalize(&h, out, NF_BLAKE3_OUT_LEN);
}

void nf_blake3_derive_key_raw_64_many(const uint8_t context_key[NF_BLAKE3_KEY_LEN], const uint8_t *inputs,
                                      size_t count, uint8_t *out) {
    /* Each input is the single, full, last block of the single chunk of its own
     * hash: one compression with CHUNK_START|CHUNK_END|ROOT, counter 0, whose
     * first 32 output bytes are the chaining-value half of the state. */
    const int level = nf_blake3_simd_current();
    uint32_t key[8];
    nf_b3_load_key_words(context_key, key);
    enum { BATCH = 256 };
    const uint8_t *ptrs[BATCH];
    while (count > 0) {
        size_t n = count < BATCH ? count : BATCH;
        for (size_t i = 0; i < n; i++) ptrs[i] = inputs + i * NF_BLAKE3_BLOCK_LEN;
        hash_many(level, ptrs, n, 1, key, 0, false, NF_B3_DERIVE_KEY_MATERIAL, NF_B3_CHUNK_START,
                  NF_B3_CHUNK_END | NF_B3_ROOT, out);
        inputs += n * NF_BLAKE3_BLOCK_LEN;
        out += n * NF_BLAKE3_OUT_LEN;
        count -= n;
    }
}
