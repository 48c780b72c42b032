"""Block hashing and Merkle top hashes: pure functions with the rules of docs/hash-schemes.md."""

from .digests import block_digest, block_digests, block_digests_packed, pack, unpack
from .files import FileHashes, hash_file
from .merkle import top_hash
from .schemes import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_SCHEME,
    DIGEST_LEN,
    SCHEMES,
    SHA256_EMPTY,
    Scheme,
    scheme_id,
    zero_block_digest,
)

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_SCHEME",
    "DIGEST_LEN",
    "FileHashes",
    "SCHEMES",
    "SHA256_EMPTY",
    "Scheme",
    "block_digest",
    "block_digests",
    "block_digests_packed",
    "hash_file",
    "pack",
    "scheme_id",
    "top_hash",
    "unpack",
    "zero_block_digest",
]
