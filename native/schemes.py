"""Constants shared by the C core, its Python twin and hashmaps (docs/hash-schemes.md)."""

SCHEME_SHA256 = 1
SCHEME_BLAKE3 = 2
SCHEME_IDS = {"sha256": SCHEME_SHA256, "blake3": SCHEME_BLAKE3}
DIGEST_LEN = 32
MERKLE_NODE_CONTEXT = "nefeli 2026 merkle node"
OBJECT_ROOT_CONTEXT = "nefeli 2026 object root"
