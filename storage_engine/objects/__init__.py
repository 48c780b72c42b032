"""The object service: accounts, containers, versions, sharing, public URLs, tokens
(metadata/), the object store over the map layer (store.py), MD5 backfill."""
