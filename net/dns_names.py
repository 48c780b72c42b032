"""Domain names in RFC 1035 §3.1 wire form, for the search lists carried by DHCPv4
option 119 (RFC 3397: compressed), DHCPv6 option 24 and the ICMPv6 DNSSL option
(RFC 8415 §10 and RFC 8106 §5.2: uncompressed).

A name is a sequence of labels (one length byte, up to 63 bytes each) ending in
a zero byte; compression replaces a suffix already written by a two-byte pointer
``0b11`` + 14-bit offset from the start of the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from net.packet_errors import MalformedPacket

__all__ = ["check_name", "decode_names", "encode_names", "padded"]

MAX_LABEL = 63
MAX_NAME = 255  # wire octets, labels and their length bytes plus the root byte


def check_name(name: str) -> tuple[bytes, ...]:
    """The labels of ``name`` (a trailing dot is allowed); ValueError if it cannot be encoded."""
    text = name.strip().rstrip(".")
    if not text:
        raise ValueError("empty domain name")
    try:
        raw = text.encode("idna") if any(ord(c) > 127 for c in text) else text.encode("ascii")
    except UnicodeError:
        raise ValueError(f"domain name {name!r} cannot be encoded") from None
    labels = tuple(raw.split(b"."))
    if any(not lab or len(lab) > MAX_LABEL for lab in labels):
        raise ValueError(f"domain name {name!r}: empty label or label over {MAX_LABEL} bytes")
    if sum(len(lab) + 1 for lab in labels) + 1 > MAX_NAME:
        raise ValueError(f"domain name {name!r} is over {MAX_NAME} bytes")
    return labels


def encode_names(names: Iterable[str], *, compress: bool) -> bytes:
    """Concatenated names; with ``compress``, suffixes already written become pointers."""
    out = bytearray()
    seen: dict[tuple[bytes, ...], int] = {}
    for name in names:
        labels = check_name(name)
        for i in range(len(labels)):
            suffix = labels[i:]
            if compress and suffix in seen:
                out += (0xC000 | seen[suffix]).to_bytes(2, "big")
                break
            if compress and len(out) < 0x4000:
                seen[suffix] = len(out)
            out.append(len(labels[i]))
            out += labels[i]
        else:
            out.append(0)
    return bytes(out)


def _read_name(data: bytes, start: int) -> tuple[str, int]:
    """The name at ``start`` and the offset just past it (pointers followed, loops refused)."""
    labels: list[str] = []
    pos = start
    end: int | None = None
    hops = 0
    length = 1
    while True:
        if pos >= len(data):
            raise MalformedPacket("domain name runs past the end")
        n = data[pos]
        if n == 0:
            if end is None:
                end = pos + 1
            break
        kind = n & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(data):
                raise MalformedPacket("truncated compression pointer")
            target = ((n & 0x3F) << 8) | data[pos + 1]
            if end is None:
                end = pos + 2
            hops += 1
            # A pointer must point backwards (RFC 1035 "prior occurrence"); that alone
            # rules out loops, the hop limit is a second guard.
            if target >= pos or hops > 127:
                raise MalformedPacket("compression pointer loop or forward pointer")
            pos = target
            continue
        if kind:
            raise MalformedPacket(f"reserved label type 0x{kind:02x}")
        label = data[pos + 1 : pos + 1 + n]
        if len(label) != n:
            raise MalformedPacket("label runs past the end")
        length += n + 1
        if length > MAX_NAME:
            raise MalformedPacket("domain name over 255 bytes")
        labels.append(label.decode("ascii", "backslashreplace"))
        pos += 1 + n
    if not labels:
        raise MalformedPacket("empty domain name in list")
    return ".".join(labels), end


def decode_names(data: bytes, *, allow_compression: bool) -> list[str]:
    """Every name in ``data``; pointers only where ``allow_compression``."""
    names: list[str] = []
    pos = 0
    while pos < len(data):
        if not allow_compression:
            # Scan for pointers in this name before following anything.
            scan = pos
            while scan < len(data) and data[scan] != 0:
                if data[scan] & 0xC0:
                    raise MalformedPacket("compression pointer where none is allowed")
                scan += 1 + data[scan]
        name, pos = _read_name(data, pos)
        names.append(name)
    return names


def padded(names: Sequence[str], block: int) -> bytes:
    """Uncompressed names zero-padded to a multiple of ``block`` bytes (DNSSL)."""
    raw = encode_names(names, compress=False)
    return raw + b"\0" * (-len(raw) % block)
