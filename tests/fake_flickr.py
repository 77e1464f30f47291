"""A stand-in for Flickr's REST API and image host on 127.0.0.1, for the collector's tests.

It answers ``flickr.photos.search`` the way Flickr does for ``format=json&nojsoncallback=1``
(what flickrapi's ``parsed-json`` format asks for), honouring ``license``, ``per_page``,
``page`` and ``extras``, and serves each photo's image from URLs pointing back to itself. Each
photo can misbehave (HTTP 500s, a slow answer, no URL), and search pages can fail with 500s.
It records every API call's parameters and counts image requests per photo id.
"""

from __future__ import annotations

import http.server
import json
import math
import re
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import Any

ALWAYS = -1  # FakePhoto.failures: every request fails


@dataclass
class FakePhoto:
    id: str
    image: bytes | None  # None: the search result carries no image URL at all
    title: str = "a dog"
    license: int = 4
    owner: str = "12345678@N00"
    ownername: str = "Test Owner"
    failures: int = 0  # the first N image requests answer HTTP 500 (ALWAYS: all of them)
    delay_s: float = 0.0  # sleep this long before answering an image request
    size: str = "m"  # which url_<size> extra carries the image URL
    width: int = 500
    height: int = 375


class FakeFlickr:
    """``with FakeFlickr(photos) as fake:`` serves ``fake.rest_url`` and the images."""

    def __init__(self, photos: list[FakePhoto], api_key: str = "test-key",
                 page_failures: dict[int, int] | None = None):
        self.photos = photos
        self.api_key = api_key
        self.page_failures = dict(page_failures or {})  # page -> how many 500s before it works
        self.api_calls: list[dict[str, str]] = []
        self.image_requests: Counter[str] = Counter()
        self.signed = True  # every API call carried an OAuth header with our key
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.rest_url = f"{self.url}/services/rest/"

    def __enter__(self) -> FakeFlickr:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def searches(self, page: int | None = None) -> list[dict[str, str]]:
        """The photos.search calls received (all, or those for one page)."""
        return [c for c in self.api_calls if c.get("method") == "flickr.photos.search"
                and (page is None or int(c.get("page", 1)) == page)]

    # -- the API -----------------------------------------------------------------------------

    def api(self, params: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.api_calls.append(params)
            if f'oauth_consumer_key="{self.api_key}"' not in authorization:
                self.signed = False
                return 200, {"stat": "fail", "code": 100,
                             "message": "Invalid API Key (Key not found)"}
            if params.get("method") != "flickr.photos.search":
                return 200, {"stat": "fail", "code": 112,
                             "message": f'Method "{params.get("method")}" not found'}
            page = int(params.get("page", 1))
            if self.page_failures.get(page, 0) > 0:
                self.page_failures[page] -= 1
                return 500, {}
        return 200, self.search(params)

    def search(self, params: dict[str, str]) -> dict[str, Any]:
        licences = params.get("license")
        matching = [p for p in self.photos
                    if not licences or str(p.license) in licences.split(",")]
        per_page = min(int(params.get("per_page", 100)), 500)
        pages = max(1, math.ceil(len(matching) / per_page))
        page = min(int(params.get("page", 1)), pages)  # Flickr repeats the last page
        extras = set(params.get("extras", "").split(","))
        items = [self._item(p, extras) for p in matching[(page - 1) * per_page:page * per_page]]
        return {"photos": {"page": page, "pages": pages, "perpage": per_page,
                           "total": len(matching), "photo": items}, "stat": "ok"}

    def _item(self, photo: FakePhoto, extras: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {"id": photo.id, "owner": photo.owner, "secret": "abc123",
                                "server": "65535", "farm": 66, "title": photo.title,
                                "ispublic": 1, "isfriend": 0, "isfamily": 0}
        if "license" in extras:
            item["license"] = str(photo.license)
        if "owner_name" in extras:
            item["ownername"] = photo.ownername
        if photo.image is not None and f"url_{photo.size}" in extras:
            item |= {f"url_{photo.size}": self.image_url(photo),
                     f"height_{photo.size}": photo.height, f"width_{photo.size}": photo.width}
        return item

    # -- the images --------------------------------------------------------------------------

    def image_url(self, photo: FakePhoto) -> str:
        return f"{self.url}/65535/{photo.id}_abc123_{photo.size}.jpg"

    def image(self, path: str) -> tuple[int, bytes, float]:
        """(status, body, delay) for GET ``path``."""
        match = re.fullmatch(r"/65535/(\w+)_abc123_\w\.jpg", path)
        photo = next((p for p in self.photos if match and p.id == match.group(1)), None)
        if photo is None or photo.image is None:
            return 404, b"not found", 0.0
        with self._lock:
            self.image_requests[photo.id] += 1
            failing = photo.failures == ALWAYS or self.image_requests[photo.id] <= photo.failures
        if failing:
            return 500, b"server error", photo.delay_s
        return 200, photo.image, photo.delay_s

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # flickrapi posts form-encoded, OAuth-signed calls
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                self._api(dict(urllib.parse.parse_qsl(body)))

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/services/rest/":
                    self._api(dict(urllib.parse.parse_qsl(url.query)))
                    return
                status, body, delay = fake.image(url.path)
                time.sleep(delay)
                self._send(status, body, "image/jpeg")

            def _api(self, params: dict[str, str]) -> None:
                status, answer = fake.api(params, self.headers.get("Authorization", ""))
                self._send(status, json.dumps(answer).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
