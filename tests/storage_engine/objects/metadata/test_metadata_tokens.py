"""Auth tokens and Swift v1 keys: returned once, stored hashed, expiring, revocable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage_engine.objects.metadata import MetadataStore, errors
from metadata_support import Clock, clock, md  # noqa: F401

A = "alice"


def _dump(tmp_path: Path) -> str:
    conn = sqlite3.connect(tmp_path / "meta.db")
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


async def test_tokens(md: MetadataStore, clock: Clock, tmp_path: Path) -> None:
    await md.accounts.create(A)
    new = await md.tokens.create(A, description="laptop")
    assert new.token.startswith("nfl_") and len(new.token) > 40
    assert (new.info.account, new.info.description, new.info.expires) == (A, "laptop", None)
    assert await md.tokens.resolve(new.token) == A
    assert await md.tokens.resolve(new.token + "x") is None
    assert await md.tokens.resolve("") is None
    other = await md.tokens.create(A, ttl=60)
    assert [t.id for t in await md.tokens.list(A)] == [new.info.id, other.info.id]
    assert new.token not in _dump(tmp_path) and other.token not in _dump(tmp_path)  # only digests stored
    clock.advance(61)
    assert await md.tokens.resolve(other.token) is None
    assert await md.tokens.purge_expired() == 1
    assert await md.tokens.revoke(new.info.id) and not await md.tokens.revoke(new.info.id)
    assert await md.tokens.resolve(new.token) is None
    third = await md.tokens.create(A)
    assert await md.tokens.revoke_token(third.token) and await md.tokens.resolve(third.token) is None
    with pytest.raises(errors.AccountNotFound):
        await md.tokens.create("nobody")
    with pytest.raises(errors.InvalidArgument):
        await md.tokens.create(A, ttl=0)


async def test_tokens_die_with_their_account(md: MetadataStore) -> None:
    await md.accounts.create(A)
    t = await md.tokens.create(A)
    await md.tokens.set_key("alice:admin", A, "a-long-enough-key")
    await md.accounts.delete(A)
    await md.accounts.create(A)
    assert await md.tokens.resolve(t.token) is None
    assert await md.tokens.verify_key("alice:admin", "a-long-enough-key") is None


async def test_swift_v1_keys(md: MetadataStore, tmp_path: Path) -> None:
    await md.accounts.create(A)
    key = await md.tokens.set_key("alice:swift", A)
    assert len(key) >= 24
    assert await md.tokens.verify_key("alice:swift", key) == A
    assert await md.tokens.verify_key("alice:swift", key + "x") is None
    assert await md.tokens.verify_key("nobody", key) is None
    dump = _dump(tmp_path)
    assert key not in dump and "scrypt$" in dump
    chosen = await md.tokens.set_key("alice:swift", A, "correct horse battery staple")
    assert await md.tokens.verify_key("alice:swift", key) is None
    assert await md.tokens.verify_key("alice:swift", chosen) == A
    assert [k.user for k in await md.tokens.list_keys(A)] == ["alice:swift"]
    with pytest.raises(errors.InvalidArgument):
        await md.tokens.set_key("alice:swift", A, "short")
    with pytest.raises(errors.InvalidName):
        await md.tokens.set_key("has space", A)
    assert await md.tokens.delete_key("alice:swift") and not await md.tokens.delete_key("alice:swift")


async def test_auth_v1_gives_the_still_valid_token(md: MetadataStore, clock: Clock, tmp_path: Path) -> None:
    """/auth/v1.0 logins: the same token while it has time left, re-derived from the key
    (never stored in clear), a new one once it is near expiry, revoked, or the key changed."""
    from storage_engine.objects.metadata.tokens import V1_REUSE_MARGIN, hash_key, key_secret

    await md.accounts.create(A)
    key = await md.tokens.set_key("alice:swift", A)
    first = await md.tokens.login_v1("alice:swift", key, ttl=3600)
    assert first is not None and first.info.account == A and await md.tokens.resolve(first.token) == A
    again = await md.tokens.login_v1("alice:swift", key, ttl=3600)
    assert again is not None and again.token == first.token and again.info.id == first.info.id
    assert len(await md.tokens.list(A)) == 1 and first.token not in _dump(tmp_path)
    assert await md.tokens.login_v1("alice:swift", key + "x", ttl=3600) is None
    assert await md.tokens.login_v1("nobody", key, ttl=3600) is None
    clock.advance(3600 - V1_REUSE_MARGIN + 1)  # too little left: a fresh one
    fresh = await md.tokens.login_v1("alice:swift", key, ttl=3600)
    assert fresh is not None and fresh.token != first.token and await md.tokens.resolve(first.token) == A
    assert await md.tokens.revoke_token(fresh.token)
    after_revoke = await md.tokens.login_v1("alice:swift", key, ttl=3600)
    assert after_revoke is not None and after_revoke.token != fresh.token
    new_key = await md.tokens.set_key("alice:swift", A)
    changed = await md.tokens.login_v1("alice:swift", new_key, ttl=3600)
    assert changed is not None and changed.token != after_revoke.token
    # one scrypt both checks a key and gives its secret: the stored hash is a prefix of it
    stored = hash_key("k" * 16)
    assert key_secret("k" * 16, stored) is not None and key_secret("k" * 17, stored) is None
    assert len(key_secret("k" * 16, stored) or b"") == 32
