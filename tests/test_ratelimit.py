import asyncio

from bot.ratelimit import RateLimiter
from bot.retry import RetryingRateLimiter


def test_sliding_window_and_one_polite_refusal() -> None:
    limiter = RateLimiter(max_events=3, per_seconds=60)
    assert [limiter.allow(1, now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow(2, now=3)  # other users are not affected
    assert limiter.first_refusal(1) and not limiter.first_refusal(1)
    assert limiter.allow(1, now=60.5)  # the first event left the window
    assert not limiter.allow(1, now=60.9) and limiter.first_refusal(1)  # a new flood, a new notice


async def test_chat_actions_do_not_spend_the_messages_budget() -> None:
    limiter = RetryingRateLimiter(overall_max_rate=1, overall_time_period=60)
    sent: list[str] = []

    async def request(endpoint: str) -> None:
        async def call() -> bool:
            sent.append(endpoint)
            return True
        await limiter.process_request(call, (), {}, endpoint, {"chat_id": 1}, None)

    await limiter.initialize()
    await request("sendMessage")  # the one message the minute allows
    for _ in range(5):
        await asyncio.wait_for(request("sendChatAction"), 1)  # not held back
    second = asyncio.create_task(request("sendMessage"))
    await asyncio.sleep(0.2)
    assert sent == ["sendMessage"] + ["sendChatAction"] * 5 and not second.done()
    second.cancel()
    await limiter.shutdown()
