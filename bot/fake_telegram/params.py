"""A request's parameters, read the way the Bot API reads them."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.fake_telegram.errors import bad_request


class Params:
    """Request parameters from the query string and a JSON, urlencoded or multipart body.

    PTB sends every value as a string (objects JSON-encoded); JSON bodies carry typed values.
    An empty value counts as absent.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    @classmethod
    async def read(cls, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError as error:
                    raise bad_request("can't parse JSON request body") from error
                if not isinstance(body, dict):
                    raise bad_request("the JSON request body must be an object")
                values.update(body)
            else:
                values.update((await request.post()).items())
        return cls(values)

    def raw(self, name: str) -> Any:
        value = self._values.get(name)
        return None if value == "" else value

    def text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, web.FileField):
            raise bad_request(f"{name} must be a string, not a file")
        return value if isinstance(value, str) else str(value)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is empty")
            return None
        try:
            if isinstance(value, bool | web.FileField):
                raise TypeError
            return int(value)
        except (TypeError, ValueError) as error:
            raise bad_request(f"invalid {name} specified") from error

    def number(self, name: str, default: float) -> float:
        value = self.raw(name)
        try:
            return default if value is None else float(value)
        except (TypeError, ValueError) as error:
            raise bad_request(f"invalid {name} specified") from error

    def flag(self, name: str) -> bool:
        return self.raw(name) in (True, 1, "true", "True", "1")

    def obj(self, name: str) -> Any:
        """A parameter that is a JSON object or array (a JSON string in forms)."""
        value = self.raw(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as error:
            raise bad_request(f"can't parse {name} JSON object") from error
