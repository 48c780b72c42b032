"""`nefeli events tail`: follow nefeli-eventd's feed (GET /events) on a node without a broker.

Prints one line per message: its spool sequence number, routing key and JSON body
(``--json``: the body only, for piping into jq). A dropped connection is resumed with
``Last-Event-ID``, so nothing is skipped or printed twice; ``--no-follow`` prints the
backlog and exits.
"""

from __future__ import annotations

import argparse
import fnmatch
import http.client
import os
import sys
import time
from urllib.parse import urlsplit

from net.sse import SseEvent, SseParser

DEFAULT_URL = "http://127.0.0.1:8187"


def _connect(url: str, after: str | None, follow: bool, timeout: float) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// URL, got {url!r}")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path.rstrip("/") or "") + "/events" + ("" if follow else "?follow=0")
    headers = {"Accept": "text/event-stream"}
    if after is not None:
        headers["Last-Event-ID"] = after
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        body = resp.read(500).decode("utf-8", "replace").strip()
        raise ConnectionError(f"{url}/events: HTTP {resp.status}: {body}")
    return resp


def _show(ev: SseEvent, args: argparse.Namespace) -> None:
    if args.key and not fnmatch.fnmatchcase(ev.event, args.key):
        return
    line = ev.data if args.json else f"{ev.id} {ev.event} {ev.data}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    after: str | None = None if args.after is None else str(args.after)
    delay = 0.5
    while True:
        parser = SseParser()
        try:
            resp = _connect(args.url, after, args.follow, timeout=60.0)
            delay = 0.5
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                for ev in parser.feed(chunk):
                    _show(ev, args)
                    after = ev.id
        except ValueError as exc:
            print(f"nefeli events: {exc}", file=sys.stderr)
            return 2
        except (OSError, http.client.HTTPException) as exc:
            if not args.follow:
                print(f"nefeli events: {exc}", file=sys.stderr)
                return 1
            print(f"nefeli events: {exc}; reconnecting in {delay:.1f}s", file=sys.stderr)
        if not args.follow:
            return 0
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("events", help="follow nefeli-eventd's event feed (nodes without a broker)")
    actions = p.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    t = actions.add_parser("tail", help="print messages as eventd spools them")
    t.add_argument(
        "--url", default=os.environ.get("NEFELI_EVENTD_URL", DEFAULT_URL),
        help=f"eventd's HTTP address (default: $NEFELI_EVENTD_URL or {DEFAULT_URL})",
    )
    t.add_argument("--after", type=int, metavar="SEQ", help="start after this sequence number (default: the oldest kept)")
    t.add_argument("--key", metavar="GLOB", help="only routing keys matching this pattern, e.g. 'ganeti.*.event.op'")
    t.add_argument("--json", action="store_true", help="print only the JSON bodies")
    t.add_argument("--no-follow", dest="follow", action="store_false", help="print what is there, then exit")
    t.set_defaults(func=run)
