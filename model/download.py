"""Fetching a URL's body with a size cap: photos named by URL, and Flickr's images.

    photo_bytes = download(url, timeout_s=20)  # or DownloadError: str(error) says why

The body is streamed and given up on as soon as it passes the cap, so a huge or endless
answer costs no more than the cap. Errors keep the HTTP status and say whether trying again
may help, so each caller decides what to tell its user and whether to retry.
"""

from __future__ import annotations

import requests

MAX_DOWNLOAD_BYTES = 50 * 2**20
USER_AGENT = "whatbreed"
CHUNK_BYTES = 64 * 1024

# The network or the server failed, not the request: the same request may work later.
TRANSIENT_FAILURES = (requests.ConnectionError, requests.Timeout,
                      requests.exceptions.ChunkedEncodingError)


class DownloadError(OSError):
    """A URL that could not be fetched; str(error) says why in a few words."""

    def __init__(self, reason: str, status: int | None = None, transient: bool = False):
        super().__init__(reason)
        self.status = status  # the HTTP status of an error answer; None where none came
        self.transient = transient  # a 5xx, a timeout or a lost connection: worth retrying


class TooLargeError(DownloadError):
    """The body is larger than the cap."""


def download(url: str, timeout_s: float, max_bytes: int = MAX_DOWNLOAD_BYTES,
             session: requests.Session | None = None) -> bytes:
    """The body of ``url`` (at most ``max_bytes``); DownloadError or TooLargeError otherwise."""
    get = session.get if session else requests.get
    try:
        with get(url, timeout=timeout_s, stream=True,
                 headers={"User-Agent": USER_AGENT}) as response:
            status = response.status_code
            if status >= 400:
                raise DownloadError(f"HTTP {status} {response.reason or ''}".rstrip(), status,
                                    transient=status >= 500)
            body = bytearray()
            for chunk in response.iter_content(CHUNK_BYTES):
                body += chunk
                if len(body) > max_bytes:
                    raise TooLargeError(f"larger than {max_bytes} bytes")
    except TRANSIENT_FAILURES as error:
        raise DownloadError(_root_cause(error), transient=True) from error
    except requests.RequestException as error:  # a malformed URL, too many redirects, …
        raise DownloadError(_root_cause(error)) from error
    return bytes(body)


def _root_cause(error: BaseException) -> str:
    """The innermost error of a chain, e.g. "[Errno 111] Connection refused" rather than
    urllib3's paragraph about its connection pool."""
    while (cause := error.__cause__ or error.__context__) is not None:
        error = cause
    return str(error)
