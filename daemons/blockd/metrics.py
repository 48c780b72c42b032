"""Prometheus text exposition of blockd's counters (no client library needed)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    __slots__ = ("counts", "sum", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, v)] += 1
        self.sum += v
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = defaultdict(Histogram)
        self.bytes_in = 0
        self.bytes_out = 0
        self.errors_500 = 0

    def observe(self, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
        self.requests[(method, status)] += 1
        self.latency[method].observe(seconds)
        self.bytes_in += max(0, bytes_in)
        self.bytes_out += max(0, bytes_out)

    def render(self, store: dict[str, Any] | None) -> str:
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        head("nefeli_blockd_requests_total", "counter", "HTTP requests by method and status")
        for (m, s), n in sorted(self.requests.items()):
            out.append(f'nefeli_blockd_requests_total{{method="{m}",status="{s}"}} {n}')
        head("nefeli_blockd_request_duration_seconds", "histogram", "request latency by method")
        for m, h in sorted(self.latency.items()):
            acc = 0
            for b, c in zip(BUCKETS, h.counts):
                acc += c
                out.append(f'nefeli_blockd_request_duration_seconds_bucket{{method="{m}",le="{b}"}} {acc}')
            out.append(f'nefeli_blockd_request_duration_seconds_bucket{{method="{m}",le="+Inf"}} {h.count}')
            out.append(f'nefeli_blockd_request_duration_seconds_sum{{method="{m}"}} {h.sum:.6f}')
            out.append(f'nefeli_blockd_request_duration_seconds_count{{method="{m}"}} {h.count}')
        head("nefeli_blockd_bytes_in_total", "counter", "request body bytes read")
        out.append(f"nefeli_blockd_bytes_in_total {self.bytes_in}")
        head("nefeli_blockd_bytes_out_total", "counter", "response body bytes sent")
        out.append(f"nefeli_blockd_bytes_out_total {self.bytes_out}")
        head("nefeli_blockd_internal_errors_total", "counter", "requests answered 500")
        out.append(f"nefeli_blockd_internal_errors_total {self.errors_500}")
        if store:
            for key, kind, text in (
                ("blocks_received", "counter", "data blocks received (PUT, POST ?update, partial updates)"),
                ("blocks_deduplicated", "counter", "blocks received that were already stored (dedup hits)"),
                ("bytes_received", "counter", "object data bytes received"),
                ("bytes_served", "counter", "object data bytes served"),
                ("map_refs_added", "counter", "map references added"),
                ("map_refs_dropped", "counter", "map references dropped"),
                ("blocks", "gauge", "blocks in the store"),
                ("stored_bytes", "gauge", "record bytes of indexed blocks"),
                ("logical_bytes", "gauge", "bytes of referenced content before dedup"),
                ("maps", "gauge", "maps in the map store"),
                ("unreferenced_blocks", "gauge", "blocks no map references (GC candidates)"),
                ("dedup_ratio", "gauge", "logical / referenced raw bytes"),
                ("md5_backfill_pending", "gauge", "contents waiting for their MD5 to be computed"),
                ("md5_backfill_filled", "counter", "contents whose MD5 was computed in the background"),
                ("md5_backfill_failed", "counter", "background MD5 computations that failed (content gone or unreadable)"),
                ("md5_backfill_dropped", "counter", "contents not queued for their MD5 (queue full)"),
            ):
                if key in store:
                    name = f"nefeli_blockd_{key}" + ("_total" if kind == "counter" else "")
                    head(name, kind, text)
                    out.append(f"{name} {store[key]}")
        return "\n".join(out) + "\n"
