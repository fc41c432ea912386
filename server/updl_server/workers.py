"""Serving one port: in this process, or in N forked worker processes.

``updl-server run --workers N`` (or ``auto``: one per usable CPU) binds the
port once (to learn it and hold it), then forks N children that each build
their own app (their own database pool, their own locked temp dir in the blob
store) and listen on a socket of their own on that port (``SO_REUSEPORT``): the
kernel spreads new connections evenly between them, where one shared socket
let a worker that happened to be awake accept more than its share and the
others' clients wait. The port is announced once every worker listens. The
parent only supervises: SIGTERM or SIGINT to it is passed to every worker,
which finishes its in-flight requests and exits. A worker that dies on its own
takes the service down (the others are stopped, exit status 1), so whatever
supervises the parent (systemd, a container runtime) restarts one known state
rather than a silently shrunken pool.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("updl_server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MAX_WORKERS = 512
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as a container limits it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def serve_forked(
    serve: Callable[[socket.socket], None],
    listen: Callable[[], socket.socket],
    workers: int,
    on_ready: Callable[[], None],
) -> int:
    """Run ``serve(listen())`` in ``workers`` child processes until stopped; return an exit status.

    Each worker makes its own listening socket (``listen``: ``SO_REUSEPORT`` on one port) and
    says so on a pipe; ``on_ready`` runs once every worker listens, so a client told the
    address is never refused. ``serve`` must do all per-process setup itself (nothing with
    threads, event loops or connections may exist in the parent when it forks).
    """
    # Signals wait until the parent's handlers are in place, so none is lost between forks.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    children: set[int] = set()
    parent = os.getpid()
    ready_r, ready_w = os.pipe()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready_r)
            _run_child(serve, listen, parent, ready_w)
        children.add(pid)
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        listening = len(ready.read(workers))  # short: a worker died before it listened
    if listening == workers:
        on_ready()
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
    return status


def _run_child(
    serve: Callable[[socket.socket], None], listen: Callable[[], socket.socket], parent: int, ready: int
) -> None:
    """The worker's whole life: default signal handling, listen, say so, serve, and exit without
    the parent's cleanup (``os._exit``: atexit handlers and buffers belong to the parent)."""
    code = 0
    try:
        _stop_with(parent)
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        listener = listen()
        os.write(ready, b".")
        os.close(ready)
        serve(listener)
    except BaseException:  # the child must never return into the parent's code
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _stop_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent dies, however it dies (Linux):
    a parent killed with SIGKILL must not leave workers serving the port behind it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (AttributeError, OSError):
        return  # not Linux: the parent's own SIGTERM handling still stops the workers
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _signal(pid: int, signum: int) -> None:
    """Send ``signum`` to ``pid`` if it still exists."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
