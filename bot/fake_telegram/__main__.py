"""python -m bot.fake_telegram: serve the fake Bot API and its playground page on their own,
for a bot you point at the base_url it logs (python -m bot without a token runs both at once)."""

import argparse
import asyncio
import contextlib
import logging

from bot.fake_telegram import FakeTelegram

logger = logging.getLogger("bot.fake_telegram")


async def serve(args: argparse.Namespace) -> None:
    """Serve until cancelled (Ctrl-C)."""
    fake = FakeTelegram(args.token, args.bot_username, args.bot_name)
    await fake.start(args.host, args.port)
    logger.info(
        "bot base_url=%s base_file_url=%s token=%s", fake.base_url, fake.base_file_url, fake.token
    )
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.fake_telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:playground")
    parser.add_argument("--bot-username", default="WhatBreedBot")
    parser.add_argument("--bot-name", default="WhatBreed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
