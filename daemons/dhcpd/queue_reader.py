"""NFQUEUE over a plain AF_NETLINK socket, driven by the asyncio loop.

``loop.add_reader`` calls :meth:`QueueReader._readable` when the kernel has
queued packets; each burst is decoded (net/nfqueue.py), every packet handed to
the handler synchronously, and all verdicts of the burst go back in one
datagram: one batch verdict per queue when the whole burst agrees, single
verdicts otherwise. A handler that raises still yields the error verdict, and
queues are bound fail-open, so a full queue passes packets instead of dropping.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import socket
from collections.abc import Callable

from net.nfqueue import (
    NETLINK_NETFILTER,
    Ack,
    NetlinkError,
    NfqueueConnection,
    Overrun,
    QueuedPacket,
    QueueFlag,
    Undecodable,
)

__all__ = ["QueueError", "QueueReader"]

log = logging.getLogger("nefeli-dhcpd.nfqueue")

RCVBUF = 8 << 20
BURST = 256  # datagrams read per wake-up before the loop gets a turn
RECV_SIZE = 0x10000 + 4096
SEND_RETRIES = 5


class QueueError(RuntimeError):
    """A queue could not be set up (taken by another process, no CAP_NET_ADMIN ...)."""


class QueueReader:
    """The bound queues of one netlink socket, and their packets' verdicts."""

    def __init__(
        self,
        queues: list[int],
        handler: Callable[[QueuedPacket], int],
        *,
        error_verdict: Callable[[], int],
        maxlen: int = 4096,
        on_overrun: Callable[[], None] | None = None,
    ) -> None:
        self.queues = queues
        self.handler = handler
        self.error_verdict = error_verdict
        self.maxlen = maxlen
        self.on_overrun = on_overrun
        self.conn = NfqueueConnection()
        self.sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.verdicts_sent = 0
        self.batches_sent = 0
        self.undecodable = 0

    # -- set-up ----------------------------------------------------------------

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE (needs CAP_NET_ADMIN)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.bind((0, 0))
            self.sock = sock
            for q in self.queues:
                self._request(self.conn.bind(q), f"bind queue {q}")
                self._request(self.conn.params(q), f"set copy mode of queue {q}")
                self._request(self.conn.maxlen(q, self.maxlen), f"set length of queue {q}")
                try:
                    self._request(self.conn.flags(q, QueueFlag.FAIL_OPEN), f"make queue {q} fail-open")
                except QueueError as exc:  # kernels before 3.6
                    log.warning("%s", exc)
        except BaseException:
            sock.close()
            self.sock = None
            raise
        sock.setblocking(False)
        self._loop = loop
        loop.add_reader(sock.fileno(), self._readable)
        log.info("bound NFQUEUE %s", ", ".join(map(str, self.queues)))

    def _request(self, data: bytes, what: str) -> None:
        """Send one config request and wait (briefly, before the loop runs) for its ack."""
        assert self.sock is not None
        seq = self.conn.last_seq
        self.sock.send(data)
        deadline = 2.0
        while True:
            ready, _, _ = select.select([self.sock], [], [], deadline)
            if not ready:
                raise QueueError(f"{what}: no answer from the kernel")
            for ev in self.conn.receive(self.sock.recv(RECV_SIZE)):
                if isinstance(ev, Ack) and ev.seq == seq:
                    return
                if isinstance(ev, NetlinkError) and ev.seq == seq:
                    hint = {
                        errno.EBUSY: " (another process, nfdhcpd?, has this queue)",
                        errno.EPERM: " (needs CAP_NET_ADMIN)",
                        errno.EOPNOTSUPP: " (nfnetlink_queue is not available)",
                    }.get(ev.errno, "")
                    raise QueueError(f"{what}: {os.strerror(ev.errno)}{hint}")
                if isinstance(ev, QueuedPacket):
                    # A packet arriving while later queues are set up: it is ours already.
                    self._answer_now([ev])

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        try:
            sock.setblocking(True)
            sock.settimeout(1.0)
            for q in self.queues:
                sock.send(self.conn.unbind(q))
        except OSError:
            pass
        sock.close()

    # -- the hot path ------------------------------------------------------------

    def _verdict_for(self, pkt: QueuedPacket) -> int:
        try:
            return self.handler(pkt)
        except Exception:  # noqa: BLE001 - the handler already logs; the packet still gets a verdict
            log.exception("handler failed for packet %d of queue %d", pkt.packet_id, pkt.queue)
            return self.error_verdict()

    def _answer_now(self, packets: list[QueuedPacket]) -> None:
        assert self.sock is not None
        out = b"".join(self.conn.verdict(p.queue, p.packet_id, self._verdict_for(p)) for p in packets)
        self._send(out)

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        decided: dict[int, list[tuple[int, int]]] = {}
        for _ in range(BURST):
            try:
                data = sock.recv(RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    # The kernel could not deliver some packets; fail-open queues accept them.
                    if self.on_overrun:
                        self.on_overrun()
                    continue
                log.error("reading NFQUEUE: %s", exc.strerror or exc)
                break
            for ev in self.conn.receive(data):
                if isinstance(ev, QueuedPacket):
                    decided.setdefault(ev.queue, []).append((ev.packet_id, self._verdict_for(ev)))
                elif isinstance(ev, Undecodable):
                    self.undecodable += 1
                    log.warning("unreadable NFQUEUE message: %s", ev.reason)
                    if ev.queue is not None and ev.packet_id is not None:
                        decided.setdefault(ev.queue, []).append((ev.packet_id, self.error_verdict()))
                elif isinstance(ev, Overrun):
                    if self.on_overrun:
                        self.on_overrun()
                elif isinstance(ev, NetlinkError):
                    log.warning("netlink error for request %d: %s", ev.seq, os.strerror(ev.errno))
        if decided:
            self._send(self._verdicts(decided))

    def _verdicts(self, decided: dict[int, list[tuple[int, int]]]) -> bytes:
        parts: list[bytes] = []
        for queue, items in decided.items():
            verdicts = {v for _, v in items}
            if len(items) > 1 and len(verdicts) == 1:
                # Every packet of this queue up to the highest id was read in this burst.
                parts.append(self.conn.batch_verdict(queue, max(i for i, _ in items), verdicts.pop()))
                self.batches_sent += 1
            else:
                parts.extend(self.conn.verdict(queue, pid, v) for pid, v in items)
            self.verdicts_sent += len(items)
        return b"".join(parts)

    def _send(self, data: bytes, attempt: int = 0) -> None:
        """Send verdicts; a failed send is tried again shortly, a few times, because a
        packet whose verdict is lost stays queued until the queue is unbound."""
        if self.sock is None:
            return
        try:
            self.sock.send(data)
        except OSError as exc:
            if attempt >= SEND_RETRIES or self._loop is None:
                log.error("sending verdicts failed %d times, giving up: %s", attempt + 1, exc.strerror or exc)
                return
            if not isinstance(exc, BlockingIOError):
                log.warning("sending verdicts: %s; trying again", exc.strerror or exc)
            self._loop.call_later(0.005 * (attempt + 1), self._send, data, attempt + 1)
