"""The schema, as the DDL of each migration step (see docs/metadata-schema.md).

Steps are append-only: a released step is never edited, a change is a new step.
Statements are applied one by one inside the migration transaction.
"""

from __future__ import annotations


def _usage_delta(sign: str, row: str) -> str:
    """SET clause adding (sign '+') or removing ('-') one version row's contribution."""
    return (
        f"object_count = object_count {sign} ({row}.state = 'normal'), "
        f"bytes_used = bytes_used {sign} ({row}.state = 'normal') * {row}.size, "
        f"history_count = history_count {sign} ({row}.state = 'history'), "
        f"history_bytes = history_bytes {sign} ({row}.state = 'history') * {row}.size"
    )


def _usage_trigger(name: str, event: str, sign: str, row: str) -> str:
    return f"""
CREATE TRIGGER {name} AFTER {event} ON versions BEGIN
    UPDATE containers SET {_usage_delta(sign, row)} WHERE id = {row}.container_id;
    UPDATE accounts SET {_usage_delta(sign, row)}
        WHERE id = (SELECT account_id FROM containers WHERE id = {row}.container_id);
END"""


_USAGE_COLUMNS = """
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0,
    history_count INTEGER NOT NULL DEFAULT 0,
    history_bytes INTEGER NOT NULL DEFAULT 0"""

# Step 1: accounts, containers, object versions and their usage counters.
V1_CORE: tuple[str, ...] = (
    f"""
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    mtime REAL NOT NULL,
    quota INTEGER CHECK (quota IS NULL OR quota >= 0),
    meta TEXT NOT NULL DEFAULT '{{}}',
    container_count INTEGER NOT NULL DEFAULT 0,{_USAGE_COLUMNS}
)""",
    "CREATE UNIQUE INDEX accounts_by_name ON accounts(name)",
    f"""
CREATE TABLE containers (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    mtime REAL NOT NULL,
    versioning TEXT NOT NULL CHECK (versioning IN ('auto', 'none')),
    quota INTEGER CHECK (quota IS NULL OR quota >= 0),
    block_size INTEGER NOT NULL CHECK (block_size > 0),
    hash_scheme TEXT NOT NULL CHECK (hash_scheme IN ('sha256', 'blake3')),
    meta TEXT NOT NULL DEFAULT '{{}}',{_USAGE_COLUMNS}
)""",
    "CREATE UNIQUE INDEX containers_by_name ON containers(account_id, name)",
    """
CREATE TABLE versions (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers(id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('normal', 'history', 'deleted')),
    mtime REAL NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    content_type TEXT NOT NULL,
    map_scheme TEXT,
    map_size INTEGER,
    map_hash BLOB,
    modified_by TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    attrs TEXT NOT NULL DEFAULT '{}',
    CHECK ((state = 'deleted') = (map_hash IS NULL)),
    CHECK (map_hash IS NULL OR (map_size = size AND map_scheme IS NOT NULL))
)""",
    # The listing index: at most one current version per name, nothing else in it.
    "CREATE UNIQUE INDEX versions_current ON versions(container_id, name) WHERE state = 'normal'",
    # All versions of one object, in serial order (version lists, latest marker).
    "CREATE INDEX versions_by_name ON versions(container_id, name, serial)",
    # "Is this map still referenced by any version?" and the GC mark phase.
    "CREATE INDEX versions_by_map ON versions(map_hash, map_size, map_scheme) WHERE map_hash IS NOT NULL",
    # Purging history by time without touching current versions.
    "CREATE INDEX versions_old ON versions(container_id, mtime) WHERE state <> 'normal'",
    _usage_trigger("versions_usage_insert", "INSERT", "+", "NEW"),
    _usage_trigger("versions_usage_delete", "DELETE", "-", "OLD"),
    # Versions never move between containers, so an update is -OLD +NEW on one row.
    f"""
CREATE TRIGGER versions_usage_update AFTER UPDATE OF state, size ON versions BEGIN
    UPDATE containers SET {_usage_delta('-', 'OLD')} WHERE id = OLD.container_id;
    UPDATE containers SET {_usage_delta('+', 'NEW')} WHERE id = NEW.container_id;
    UPDATE accounts SET {_usage_delta('-', 'OLD')}
        WHERE id = (SELECT account_id FROM containers WHERE id = OLD.container_id);
    UPDATE accounts SET {_usage_delta('+', 'NEW')}
        WHERE id = (SELECT account_id FROM containers WHERE id = NEW.container_id);
END""",
    """
CREATE TRIGGER versions_fixed_container BEFORE UPDATE OF container_id, name ON versions BEGIN
    SELECT RAISE(ABORT, 'versions never change container or name');
END""",
    """
CREATE TRIGGER containers_count_insert AFTER INSERT ON containers BEGIN
    UPDATE accounts SET container_count = container_count + 1 WHERE id = NEW.account_id;
END""",
    """
CREATE TRIGGER containers_count_delete AFTER DELETE ON containers BEGIN
    UPDATE accounts SET container_count = container_count - 1 WHERE id = OLD.account_id;
END""",
)

# Step 2: groups, sharing and public URLs.
V2_SHARING: tuple[str, ...] = (
    """
CREATE TABLE groups (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (account_id, name, member)
) WITHOUT ROWID""",
    "CREATE INDEX groups_by_member ON groups(member)",
    """
CREATE TABLE sharing (
    container_id INTEGER NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    access TEXT NOT NULL CHECK (access IN ('read', 'write')),
    subject TEXT NOT NULL,
    PRIMARY KEY (container_id, path, access, subject)
) WITHOUT ROWID""",
    "CREATE INDEX sharing_by_subject ON sharing(subject, container_id)",
    """
CREATE TABLE public_urls (
    token TEXT PRIMARY KEY,
    container_id INTEGER NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created REAL NOT NULL
)""",
    "CREATE UNIQUE INDEX public_urls_by_name ON public_urls(container_id, name)",
)

# Step 3: authentication (tokens and Swift v1 user/key pairs), secrets stored hashed.
V3_AUTH: tuple[str, ...] = (
    """
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    digest BLOB NOT NULL,
    created REAL NOT NULL,
    expires REAL,
    description TEXT NOT NULL DEFAULT ''
)""",
    "CREATE UNIQUE INDEX tokens_by_digest ON tokens(digest)",
    "CREATE INDEX tokens_by_account ON tokens(account_id)",
    """
CREATE TABLE auth_keys (
    user TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL,
    created REAL NOT NULL
)""",
    "CREATE INDEX auth_keys_by_account ON auth_keys(account_id)",
)

# Step 4: X-Object-UUID.  The column is added here; migrations.py fills it for the
# rows already there, then this trigger makes it mandatory for every new row
# (ALTER TABLE cannot add a NOT NULL column without a default, and a default
# would give every forgotten insert the same UUID).
V4_UUID_COLUMN: tuple[str, ...] = ("ALTER TABLE versions ADD COLUMN uuid TEXT",)
V4_UUID_REQUIRED: tuple[str, ...] = (
    """
CREATE TRIGGER versions_uuid_required BEFORE INSERT ON versions WHEN NEW.uuid IS NULL BEGIN
    SELECT RAISE(ABORT, 'every version needs a uuid');
END""",
)

# Step 5: reading the past (Pithos `until`).  Every version of a name by time, and
# through the rowid (= serial) the newest one up to a time: covering, so the
# as-of-T listing and usage never read the table for rows they pass over.
V5_VERSIONS_AT: tuple[str, ...] = ("CREATE INDEX versions_at ON versions(container_id, name, mtime)",)

# Step 6: the token /auth/v1.0 last gave each Swift user, so a login while it is
# still valid answers the same token instead of minting one per call. The token
# itself is never stored: it is re-derived from the user's key (which only the
# caller has) and this row's nonce, and checked against tokens.digest.
V6_AUTH_V1_TOKENS: tuple[str, ...] = (
    """
CREATE TABLE auth_v1_tokens (
    user TEXT PRIMARY KEY REFERENCES auth_keys(user) ON DELETE CASCADE,
    token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    nonce BLOB NOT NULL
)""",
    "CREATE INDEX auth_v1_tokens_by_token ON auth_v1_tokens(token_id)",
)
