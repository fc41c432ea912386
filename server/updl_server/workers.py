"""Serving on one listening socket: in this process, or in N forked worker processes.

``updl-server run --workers N`` binds once, then forks N children that each
build their own app (their own database pool, their own locked temp dir in the
blob store) and accept on the inherited socket; the kernel spreads connections
between them. The parent only supervises: SIGTERM or SIGINT to it is passed
to every worker, which finishes its in-flight requests and exits. A worker
that dies on its own takes the service down (the others are stopped, exit
status 1), so whatever supervises the parent (systemd, a container runtime)
restarts one known state rather than a silently shrunken pool.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("updl_server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def serve_forked(serve: Callable[[socket.socket], None], sock: socket.socket, workers: int) -> int:
    """Run ``serve(sock)`` in ``workers`` child processes until stopped; return an exit status.

    ``serve`` must do all per-process setup itself (nothing with threads,
    event loops or connections may exist in the parent when it forks).
    """
    # Signals wait until the parent's handlers are in place, so none is lost between forks.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    children: set[int] = set()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            _run_child(serve, sock)
        children.add(pid)
    stopping = False

    def stop_all(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            _signal(child, signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop_all)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    status = 0
    while children:
        pid, wait_status = os.wait()  # retried by Python after a signal handler runs
        children.discard(pid)
        code = os.waitstatus_to_exitcode(wait_status)
        if not stopping:
            log.error("worker %d exited unexpectedly (status %d); stopping the others", pid, code)
            stop_all(signal.SIGTERM, None)
            status = 1
    sock.close()
    return status


def _run_child(serve: Callable[[socket.socket], None], sock: socket.socket) -> None:
    """The worker's whole life: default signal handling, serve, and exit without the parent's
    cleanup (``os._exit``: atexit handlers and buffers belong to the parent)."""
    code = 0
    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        serve(sock)
    except BaseException:  # the child must never return into the parent's code
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _signal(pid: int, signum: int) -> None:
    """Send ``signum`` to ``pid`` if it still exists."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
