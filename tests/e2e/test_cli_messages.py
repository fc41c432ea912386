"""Messages for the mistakes a new user makes, through the installed ``updl`` against a real server."""

from __future__ import annotations

from tests.support.live_server import LiveServer


def test_url_with_a_path_is_not_an_updl_server_not_a_missing_file(
    live_server: LiveServer, token: str, run_updl
) -> None:
    for args in (("ls",), ("get", "app.tar.gz"), ("info", "app.tar.gz")):
        result = run_updl(live_server, token, *args, url=live_server.url + "/api")
        assert result.returncode == 2, result.stderr  # a usage/configuration error, not 4 (not found)
        assert result.stderr.splitlines()[-1] == (
            f"updl: error: {live_server.url}/api does not look like an updl server: GET "
            f"{live_server.url}/api/{'files' if args[0] != 'info' else 'info'}"
            f"{'' if args[0] == 'ls' else '/app.tar.gz'} answered 404 (no such route); "
            "--url / UPDL_URL must be the server's root URL, e.g. http://HOST:8000"
        )


def test_https_to_a_plain_http_server_says_so(live_server: LiveServer, token: str, run_updl) -> None:
    https = live_server.url.replace("http://", "https://")
    result = run_updl(live_server, token, "ls", url=https)
    assert result.returncode == 6
    assert result.stderr.splitlines() == [
        f"updl: error: TLS handshake with {https} failed: is the server speaking HTTPS? "
        f"For a plain-HTTP server use {live_server.url}"
    ]


def test_too_large_names_the_limit_in_the_size_unit_of_the_cli(server_factory, run_updl, make_file) -> None:
    server = server_factory("--max-size", "1MiB")
    result = run_updl(server, server.add_user("small"), "put", str(make_file("big.bin", 2 * 1024 * 1024)))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "updl: uploading big.bin (2.0 MiB)"
    assert result.stderr.splitlines()[-1] == "updl: error: file exceeds the server's size limit (limit 1.0 MiB)"
