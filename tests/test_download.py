"""model.download against a real HTTP server on 127.0.0.1: bodies, the size cap, HTTP errors
with their status, timeouts and refused connections."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from model.download import DownloadError, TooLargeError, download

BODY = bytes(range(256)) * 40  # 10 KiB
TIMEOUT_S = 0.5


class Handler(http.server.BaseHTTPRequestHandler):
    """/body: BODY; /endless: bytes until the client hangs up; /slow: too late; /status/N: N."""

    endless_sent: list[int] = []  # bytes each /endless answer wrote before the client hung up

    def do_GET(self) -> None:
        if self.path.startswith("/status/"):
            self.send_error(int(self.path.removeprefix("/status/")))
            return
        if self.path == "/slow":
            time.sleep(4 * TIMEOUT_S)
        self.send_response(200)
        self.end_headers()
        if self.path == "/endless":  # no Content-Length: the body would end when we close
            self.write_until_hung_up()
        else:
            self.wfile.write(BODY)

    def write_until_hung_up(self) -> None:
        sent = 0
        try:
            while sent < 2**30:
                self.wfile.write(BODY)
                sent += len(BODY)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should
        self.endless_sent.append(sent)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_body_as_served(server: str) -> None:
    assert download(f"{server}/body", TIMEOUT_S) == BODY
    assert download(f"{server}/body", TIMEOUT_S, max_bytes=len(BODY)) == BODY  # at the cap


def test_a_body_over_the_cap_is_refused(server: str) -> None:
    with pytest.raises(TooLargeError, match=f"larger than {len(BODY) - 1} bytes") as caught:
        download(f"{server}/body", TIMEOUT_S, max_bytes=len(BODY) - 1)
    assert not caught.value.transient


def test_an_endless_body_is_read_no_further_than_the_cap(server: str) -> None:
    with pytest.raises(TooLargeError):
        download(f"{server}/endless", TIMEOUT_S, max_bytes=2**20)
    for _ in range(50):  # the server notices the hang-up at its next write
        if Handler.endless_sent:
            break
        time.sleep(0.1)
    # 1 MiB read, plus what the sockets' buffers held when the client hung up.
    assert Handler.endless_sent and Handler.endless_sent[0] < 32 * 2**20


@pytest.mark.parametrize(("status", "reason", "transient"), [
    (404, "Not Found", False), (403, "Forbidden", False),
    (500, "Internal Server Error", True), (503, "Service Unavailable", True)])
def test_http_errors_carry_their_status(server: str, status: int, reason: str,
                                        transient: bool) -> None:
    with pytest.raises(DownloadError) as caught:
        download(f"{server}/status/{status}", TIMEOUT_S)
    assert str(caught.value) == f"HTTP {status} {reason}"
    assert (caught.value.status, caught.value.transient) == (status, transient)


def test_a_timeout_is_transient(server: str) -> None:
    with pytest.raises(DownloadError, match="timed out") as caught:
        download(f"{server}/slow", TIMEOUT_S)
    assert caught.value.transient and caught.value.status is None


def test_a_refused_connection_is_transient_and_said_in_a_few_words() -> None:
    with socket.socket() as unused:  # a port that nothing listens on once closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(DownloadError) as caught:
        download(f"http://127.0.0.1:{port}/body", TIMEOUT_S)
    assert "Connection refused" in str(caught.value)
    assert "HTTPConnectionPool" not in str(caught.value)  # the cause, not urllib3's paragraph
    assert caught.value.transient and caught.value.status is None


def test_a_malformed_url_is_not_transient() -> None:
    with pytest.raises(DownloadError, match="No host supplied") as caught:
        download("http://", TIMEOUT_S)
    assert not caught.value.transient
