"""A real ``updl-server`` process on a free port, and how tests reach its console scripts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from updl_server.auth import mint_token
from updl_server.catalog import Catalog
from updl_server.config import ServerConfig
from updl_server.names import user_name_problem

LISTENING = re.compile(r"updl-server listening on (https?://\S+)")
START_TIMEOUT = 30.0


def console_script(name: str) -> str:
    """Path of an installed console script, preferring the running interpreter's environment."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"console script {name!r} is not installed; run the README's test command")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any UPDL_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPDL_")}
    env.update(extra)
    return env


@dataclass
class LiveServer:
    """A running ``updl-server run`` subprocess and how to reach it."""

    data_dir: Path
    args: tuple[str, ...] = ()
    url: str = ""
    process: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the server
    ca_bundle: str | None = None  # the CA to verify an https:// server's certificate with

    def start(self) -> None:
        """Start the server and block until it reports the URL it listens on."""
        cmd = [
            console_script("updl-server"),
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *self.args,
        ]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(**self.env),
        )
        ready = threading.Event()
        self.log = []

        def drain(stream, log: list[str]) -> None:
            # Keeps the pipe empty for the server's whole life, so logging never blocks it, and
            # closes it at the end (left to the garbage collector, it is a ResourceWarning).
            with stream:
                for line in stream:
                    log.append(line)
                    match = LISTENING.search(line)
                    if match and not ready.is_set():
                        self.url = match.group(1)
                        ready.set()
            ready.set()

        threading.Thread(target=drain, args=(self.process.stderr, self.log), daemon=True).start()
        if not ready.wait(START_TIMEOUT) or not self.url:
            self.stop()
            pytest.fail("updl-server did not start:\n" + "".join(self.log))
        try:
            status: int | str = requests.get(
                f"{self.url}/health", timeout=10, verify=self.ca_bundle or True
            ).status_code
        except requests.RequestException as exc:
            status = f"{type(exc).__name__}: {exc}"
        if status != 200:
            self.stop()
            pytest.fail(f"updl-server is not healthy ({status}); its log:\n" + "".join(self.log))

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill``) and wait for it to exit."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def restart(self) -> None:
        """Stop and start again on the same data dir (the port may change)."""
        self.stop()
        self.start()

    def add_user(self, name: str) -> str:
        """Create a user on this server's database and return a token for it, in-process.

        The same catalog and token code ``updl-server add-user`` runs, called here rather than
        in a new process: starting one per token was most of the suite's setup time. SQLite in
        WAL mode (or PostgreSQL) takes this writer beside the running server.
        ``add_user_with_command`` goes through the console script itself.
        """
        problem = user_name_problem(name)
        assert problem is None, f"invalid user name {name!r}: {problem}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(ServerConfig(data_dir=self.data_dir, db_url=self.db_url()).database_url)
        try:
            catalog.create_tables()  # as add-user does: a server may not have run on it yet
            token = mint_token()
            catalog.add_token(catalog.add_user(name), token.token_id, token.secret_hash)
        finally:
            catalog.close()  # no connection left open: a test may unmount the data dir next
        return token.text

    def add_user_with_command(self, name: str) -> str:
        """Create a user with the ``updl-server add-user`` console script and return its token."""
        result = subprocess.run(
            [console_script("updl-server"), "add-user", name, "--data-dir", str(self.data_dir), *self.db_args()],
            capture_output=True,
            text=True,
            env=clean_env(**self.env),
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        token = result.stdout.strip()
        assert token and "\n" not in token
        return token

    def db_args(self) -> list[str]:
        """The ``--db-url`` argument the server was started with, if any, for sibling commands."""
        args = list(self.args)
        if "--db-url" in args:
            return ["--db-url", args[args.index("--db-url") + 1]]
        return []

    def db_url(self) -> str | None:
        """The ``--db-url`` the server was started with, if any."""
        args = self.db_args()
        return args[1] if args else None
