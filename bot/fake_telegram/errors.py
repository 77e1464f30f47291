"""The Bot API's error reply: raised anywhere in the fake, answered by the server."""

from aiohttp import web


class ApiError(Exception):
    """A Bot API error reply: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.code = code

    def response(self) -> web.Response:
        """The JSON reply Telegram would give."""
        body = {"ok": False, "error_code": self.code, "description": self.description}
        return web.json_response(body, status=self.code)


def bad_request(detail: str) -> ApiError:
    """Telegram's usual error: 400 "Bad Request: <detail>"."""
    return ApiError(f"Bad Request: {detail}")
