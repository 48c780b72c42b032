"""CFFI (API mode) build of nefeli's C core.

Run as ``python -m native.build`` (the Makefile does) to compile the extension
``native._core`` in place, or through setup.py's ``cffi_modules`` when the
project is installed as a wheel.  The only native dependency is OpenSSL's
libcrypto (SHA-256); every SIMD back end of BLAKE3 is compiled with a
per-file ``#pragma GCC target`` so one set of compiler flags serves all.
"""

from __future__ import annotations

import pathlib
import sys

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent

CDEF = """
/* BLAKE3 */
typedef struct { ...; } nf_blake3_hasher;
void nf_blake3_hasher_init(nf_blake3_hasher *self);
void nf_blake3_hasher_init_keyed(nf_blake3_hasher *self, const uint8_t *key);
void nf_blake3_hasher_init_derive_key(nf_blake3_hasher *self, const char *context);
void nf_blake3_hasher_init_derive_key_raw(nf_blake3_hasher *self, const uint8_t *context_key);
void nf_blake3_hasher_update(nf_blake3_hasher *self, const void *input, size_t input_len);
void nf_blake3_hasher_finalize(const nf_blake3_hasher *self, uint8_t *out, size_t out_len);
void nf_blake3_hash(const void *input, size_t input_len, uint8_t *out);
void nf_blake3_context_key(const char *context, uint8_t *out);
void nf_blake3_derive_key_raw(const uint8_t *context_key, const void *material,
                              size_t material_len, uint8_t *out);
void nf_blake3_derive_key_raw_64_many(const uint8_t *context_key, const uint8_t *inputs,
                                      size_t count, uint8_t *out);
int nf_blake3_simd_detected(void);
int nf_blake3_simd_current(void);
int nf_blake3_simd_force(int level);
const char *nf_blake3_simd_name(int level);

/* hashing core */
#define NF_SCHEME_SHA256 ...
#define NF_SCHEME_BLAKE3 ...
void nf_sha256(const void *input, size_t input_len, uint8_t *out);
size_t nf_rstrip_zeros_len(const uint8_t *buf, size_t len);
int nf_is_zero(const uint8_t *buf, size_t len);
size_t nf_zero_block_flags(const uint8_t *buf, size_t len, size_t block_size, uint8_t *flags);
int nf_block_digests(int scheme, const uint8_t *buf, size_t len, size_t block_size,
                     int threads, uint8_t *out);
void nf_merkle_sha256(const uint8_t *digests, size_t count, uint8_t *out);
void nf_merkle_blake3(const uint8_t *digests, size_t count, uint64_t size, uint8_t *out);

/* volume maps */
long nf_vmap_runs(uint64_t offset, uint64_t length, uint64_t block_size, uint64_t size, uint64_t *out);
long nf_vmap_cow_plan(const uint8_t *entries, size_t count, uint64_t offset, uint64_t length,
                      uint64_t block_size, uint64_t size, uint8_t *actions);
void nf_vmap_fill(uint8_t *entries, size_t first, size_t n, int kind);
size_t nf_vmap_freeze(uint8_t *src, uint8_t *dst, size_t count, uint32_t extent);
size_t nf_vmap_resolve(uint8_t *entries, size_t count, uint32_t extent, const uint8_t *digests);
size_t nf_vmap_diff(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint64_t *out);
size_t nf_vmap_status_runs(const uint8_t *entries, size_t first, size_t n, uint64_t *out);
void nf_vmap_ref_digests(const uint8_t *entries, size_t count, const uint8_t *zero_full,
                         const uint8_t *zero_last, uint8_t *out);
"""


def sources(absolute: bool = False) -> list[str]:
    files = sorted(HERE.glob("*.c")) + sorted((HERE / "blake3").glob("*.c"))
    # setuptools wants paths relative to the project; a direct compile() runs in its tmpdir.
    return [str(p) if absolute else str(p.relative_to(HERE.parent)) for p in files]


def make_builder(absolute: bool = False) -> FFI:
    builder = FFI()
    builder.cdef(CDEF)
    builder.set_source(
        "native._core",
        '#include "core.h"\n#include "vmap.h"\n#include "blake3/blake3.h"\n',
        sources=sources(absolute),
        include_dirs=[str(HERE)],
        libraries=["crypto", "pthread"],
        extra_compile_args=["-O3", "-std=gnu11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"],
    )
    return builder


ffibuilder = make_builder()


def main() -> None:
    out = make_builder(absolute=True).compile(tmpdir=str(HERE.parent / "build" / "native"), verbose="-v" in sys.argv)
    # compile() leaves the module under tmpdir; put it where the package imports it.
    target = HERE / pathlib.Path(out).name
    if pathlib.Path(out).resolve() != target:
        pathlib.Path(out).replace(target)
    # An install may have left a build under another suffix (abi3): one module only.
    for stale in HERE.glob("_core.*.so"):
        if stale != target:
            stale.unlink()
    print(f"native: built {target.name}")


if __name__ == "__main__":
    main()
