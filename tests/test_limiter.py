"""The adaptive concurrency limiter (pure) and the tuner that feeds it."""

import asyncio

import pytest

from worker.consumer import Capacity
from worker.consumer.limiter import Limiter, Sample
from worker.consumer.tuning import Tuner
from worker.observability.metrics import Metrics


def busy(limiter: Limiter, latency: float = 1.0, most: int = 10**6) -> Sample:
    """A window where every slot was taken, calls came back in ``latency``, and the
    throughput followed the limit (Little's law) up to ``most``."""
    completed = min(most, limiter.limit)
    return Sample(completed=completed, latency=latency, peak_in_flight=limiter.limit)


def test_slow_start_doubles_while_the_limit_binds_and_latency_holds() -> None:
    limiter = Limiter(16, 1024, initial=64, warmup=0, settle=1)
    seen = []
    for _ in range(6):
        limiter.update(busy(limiter))
        seen.append(limiter.limit)
    assert seen == [128, 256, 512, 1024, 1024, 1024]
    assert limiter.reason == "growing"


def test_no_growth_when_the_limit_is_not_the_bottleneck() -> None:
    limiter = Limiter(16, 1024, initial=64)
    moved = limiter.update(Sample(completed=100, latency=0.01, peak_in_flight=20))
    assert not moved and limiter.limit == 64 and limiter.reason == "start"


def test_a_429_cuts_the_limit_and_ends_slow_start() -> None:
    limiter = Limiter(16, 1024, initial=400, warmup=0, settle=1)
    assert limiter.update(Sample(completed=50, latency=1.0, throttled=3, peak_in_flight=400))
    assert limiter.limit == 300 and limiter.reason == "rate_limited"
    limiter.update(busy(limiter))  # growth after a decrease is a tenth, not x2
    assert limiter.limit == 330 and limiter.reason == "growing"


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (Sample(completed=10, timeouts=2, peak_in_flight=400), "timeouts"),
        (Sample(completed=10, memory_pressure=True, peak_in_flight=400), "memory"),
    ],
)
def test_timeouts_and_memory_pressure_shrink(sample: Sample, reason: str) -> None:
    limiter = Limiter(16, 1024, initial=400)
    assert limiter.update(sample)
    assert limiter.limit == 300 and limiter.reason == reason


def test_rising_latency_shrinks_in_proportion_at_most_by_half() -> None:
    limiter = Limiter(16, 1024, initial=512, warmup=2, slack=0.0)
    for _ in range(2):  # warm-up windows teach the baseline only
        limiter.update(Sample(completed=100, latency=1.0, peak_in_flight=10))
    assert limiter.limit == 512
    limiter.update(Sample(completed=100, latency=2.5, peak_in_flight=512))
    assert limiter.limit == int(512 * 2.0 / 2.5) and limiter.reason == "latency"
    limiter.update(Sample(completed=100, latency=50.0, peak_in_flight=500))
    assert limiter.limit == int(int(512 * 2.0 / 2.5) * 0.5)


def test_first_windows_do_not_judge_latency() -> None:
    """The first calls back are the fast ones: a slower steady state is not congestion."""
    limiter = Limiter(16, 1024, initial=64, warmup=3, slack=0.0, settle=1)
    limiter.update(Sample(completed=20, latency=0.2, peak_in_flight=64))
    limiter.update(Sample(completed=40, latency=0.8, peak_in_flight=128))
    assert limiter.limit == 256 and limiter.reason == "growing"


def test_bounded_by_floor_and_ceiling() -> None:
    limiter = Limiter(16, 100, initial=20, settle=1)
    for _ in range(10):
        limiter.update(Sample(throttled=1))
    assert limiter.limit == 16
    for _ in range(20):
        limiter.update(busy(limiter))
    assert limiter.limit == 100


def test_a_growth_that_buys_no_throughput_is_undone_then_probed_again() -> None:
    """CPU-bound (the instant provider): the slots are all taken, more slots do not
    raise the rate, so the limit goes back to where it was."""
    limiter = Limiter(16, 1024, initial=200, warmup=0, settle=2, probe=6)
    limits = []
    for _ in range(12):
        limiter.update(busy(limiter, latency=0.01, most=150))
        limits.append(limiter.limit)
    assert limits[:4] == [200, 400, 400, 200] and limiter.reason in ("flat", "growing")
    assert 400 not in limits[4:8]  # no probe before ``probe`` windows
    assert max(limits[8:]) == 220  # the probe is a tenth, slow start is over


def test_a_floor_equal_to_the_ceiling_pins_the_limit() -> None:
    limiter = Limiter(128, 128)
    assert not limiter.update(Sample(throttled=5))
    assert not limiter.update(busy(limiter))
    assert limiter.limit == 128 and limiter.reason == "pinned"
    with pytest.raises(ValueError):
        Limiter(10, 5)


def test_tuner_turns_provider_outcomes_into_a_window_and_shows_the_move() -> None:
    metrics = Metrics()
    applied: list[int] = []
    tuner = Tuner(Limiter(16, 1024, initial=200), metrics, applied.append)
    for _ in range(30):
        metrics.provider_call("openai", "ok", 0.5, 0.0)
    metrics.provider_call("openai", "rate_limit", 0.1, 0.0)
    tuner.in_flight(200)
    assert tuner.step(in_flight_now=150)
    assert applied == [150]
    text = metrics.prometheus().decode()
    assert "fleet_concurrency_limit 150.0" in text
    assert 'fleet_concurrency_limit_reason{reason="rate_limited"} 1.0' in text
    quiet = tuner.sample(in_flight_now=3)  # the next window starts empty (the handlers
    assert quiet.completed == 0 and quiet.throttled == 0  # running at its start count)
    assert quiet.peak_in_flight == 150


def test_tuner_memory_pressure() -> None:
    tuner = Tuner(
        Limiter(16, 1024, initial=100),
        Metrics(),
        lambda _n: None,
        memory_limit_mb=100,
        memory=lambda: 150.0,
    )
    assert tuner.sample(0).memory_pressure


async def test_capacity_resize_shrinks_as_handlers_finish() -> None:
    capacity = Capacity(10)
    assert await capacity.take(10) == 10
    capacity.resize(4)  # 10 in use, 4 allowed: nothing until 7 have finished
    capacity.give(6)
    waiter = asyncio.create_task(capacity.take(4))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    capacity.give(1)
    assert await asyncio.wait_for(waiter, 1) == 1
    capacity.resize(20)
    assert await capacity.take(10, linger=0.01) == 10
