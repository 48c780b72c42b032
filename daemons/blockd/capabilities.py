"""`GET /info`: what this server supports, in the form of Swift's capability discovery.

Swift clients read it before choosing how to work: python-swiftclient's
`swift upload --segment-size` makes static large objects when `slo` is listed
(dynamic ones otherwise), its `swift delete` of many objects uses bulk delete
when `bulk_delete` is listed (daemons/blockd/bulk.py), temporary URLs are
checked against `tempurl`'s methods and digests,
and `swift capabilities` prints it all. Only what nefeli-blockd does is listed,
with its real limits; the `nefeli` section adds what is nefeli's own.
"""

from __future__ import annotations

from typing import Any

from net.object_names import MAX_ACCOUNT_NAME, MAX_CONTAINER_NAME, MAX_OBJECT_NAME
from net.pithos_hashmap import MAX_OBJECT_SIZE
from net.swift_slo import MAX_MANIFEST_SEGMENTS, MAX_MANIFEST_SIZE
from storage_engine.objects.metadata.validation import (
    MAX_LISTING_LIMIT,
    MAX_META_COUNT,
    MAX_META_KEY,
    MAX_META_TOTAL,
    MAX_META_VALUE,
)

from .bulk import info as bulk_delete_info
from .config import BlockdConfig
from .extract_archive import info as bulk_upload_info
from .tempurl import info as tempurl_info

#: the paths swiftclient derives from a storage URL (`/v1/<acct>` and `/object-store/v1/<acct>`)
INFO_PATHS = ("/info", "/object-store/info")


def capabilities(config: BlockdConfig, version: str | None) -> dict[str, Any]:
    """The /info document (JSON) for this configuration."""
    return {
        "swift": {
            "version": f"nefeli {version or 'unknown'}",
            "max_file_size": MAX_OBJECT_SIZE,
            "max_object_name_length": MAX_OBJECT_NAME,
            "max_account_name_length": MAX_ACCOUNT_NAME,
            "max_container_name_length": MAX_CONTAINER_NAME,
            "max_meta_name_length": MAX_META_KEY,
            "max_meta_value_length": MAX_META_VALUE,
            "max_meta_count": MAX_META_COUNT,
            "max_meta_overall_size": MAX_META_TOTAL,
            "container_listing_limit": MAX_LISTING_LIMIT,
            "account_listing_limit": MAX_LISTING_LIMIT,
            "valid_api_versions": ["v1"],
        },
        "slo": {
            "max_manifest_segments": MAX_MANIFEST_SEGMENTS,
            "max_manifest_size": MAX_MANIFEST_SIZE,
            "min_segment_size": 1,
        },
        "dlo": {},
        "tempurl": tempurl_info(),
        "bulk_delete": bulk_delete_info(),
        "bulk_upload": bulk_upload_info(),
        "nefeli": {
            "hash_schemes": ["blake3", "sha256"],
            "default_hash": config.default_hash,
            "default_block_size": config.default_block_size,
            "md5_backfill": config.md5_backfill,
        },
    }
