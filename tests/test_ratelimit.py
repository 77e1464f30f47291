from bot.ratelimit import RateLimiter


def test_sliding_window_and_one_polite_refusal() -> None:
    limiter = RateLimiter(max_events=3, per_seconds=60)
    assert [limiter.allow(1, now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow(2, now=3)  # other users are not affected
    assert limiter.first_refusal(1) and not limiter.first_refusal(1)
    assert limiter.allow(1, now=60.5)  # the first event left the window
    assert not limiter.allow(1, now=60.9) and limiter.first_refusal(1)  # a new flood, a new notice
