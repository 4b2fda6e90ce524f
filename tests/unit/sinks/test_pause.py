"""Sink pauses during an outage: growing, capped, ended by a publish that goes through."""

from __future__ import annotations

from datetime import timedelta

from tether.sinks.pause import MIN_WAIT, OUTAGE, SinkPauses


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_outage_in_a_row_pauses_longer_up_to_the_cap() -> None:
    pauses = SinkPauses(clock=Ticks())
    got = [pauses.pause("nats").total_seconds() for _ in range(6)]
    assert got == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert OUTAGE.cap == timedelta(seconds=2)


def test_a_pause_ends_by_itself_and_a_publish_resets_the_run() -> None:
    ticks = Ticks()
    pauses = SinkPauses(clock=ticks)
    pauses.pause("nats")
    pauses.pause("nats")
    assert pauses.paused("nats") and not pauses.paused("log")
    ticks.now += 0.5
    assert not pauses.paused("nats")
    pauses.resume("nats")
    assert pauses.pause("nats") == timedelta(milliseconds=250)  # a new run starts short


def test_wait_is_until_the_first_of_the_sinks_is_back_and_never_below_the_minimum() -> None:
    ticks = Ticks()
    pauses = SinkPauses(clock=ticks)
    for _ in range(3):
        pauses.pause("slow")  # 1 s
    pauses.pause("quick")  # 0.25 s
    assert pauses.wait(["slow", "quick"]) == timedelta(milliseconds=250)
    assert pauses.wait(["slow"]) == timedelta(seconds=1)
    assert pauses.wait(["never-paused"]) == MIN_WAIT
    ticks.now += 5
    assert pauses.wait(["slow"]) == MIN_WAIT
    pauses.clear()
    assert not pauses.paused("slow")
