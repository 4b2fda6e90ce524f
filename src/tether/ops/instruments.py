"""The metrics port: counters and histograms that are Prometheus's when ``prometheus_client``
is installed (the ``metrics`` extra) and do nothing when it is not.

Call sites keep Prometheus's spelling (``COUNTER.labels("x").inc()``, ``HIST.observe(s)``), so
the relay, the worker and the rate limiter run the same code with or without the extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Protocol

from tether.core.errors import ConfigError


class Counter(Protocol):
    def labels(self, *values: str, **by_name: str) -> Counter: ...

    def inc(self, amount: float = 1) -> None: ...


class Histogram(Protocol):
    def labels(self, *values: str, **by_name: str) -> Histogram: ...

    def observe(self, amount: float) -> None: ...


class Gauge(Protocol):
    def labels(self, *values: str, **by_name: str) -> Gauge: ...

    def set(self, value: float) -> None: ...


class _Nothing:
    """A counter, a histogram and a gauge that record nothing."""

    __slots__ = ()

    def labels(self, *values: str, **by_name: str) -> _Nothing:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass

    def set(self, value: float) -> None:
        pass


def _prometheus() -> ModuleType | None:
    try:
        import prometheus_client
    except ImportError:
        return None
    return prometheus_client


_PROMETHEUS = _prometheus()
ENABLED = _PROMETHEUS is not None
"""True when metrics are recorded (``prometheus_client`` is importable)."""


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    if _PROMETHEUS is None:
        return _Nothing()
    made: Counter = _PROMETHEUS.Counter(name, documentation, list(labels))
    return made


def histogram(
    name: str, documentation: str, buckets: Sequence[float], labels: Sequence[str] = ()
) -> Histogram:
    if _PROMETHEUS is None:
        return _Nothing()
    made: Histogram = _PROMETHEUS.Histogram(name, documentation, list(labels), buckets=buckets)
    return made


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
    if _PROMETHEUS is None:
        return _Nothing()
    made: Gauge = _PROMETHEUS.Gauge(name, documentation, list(labels))
    return made


def serve(port: int) -> None:
    """Serve ``/metrics`` over HTTP on ``port`` (all interfaces); OSError if it is taken."""
    if _PROMETHEUS is None:
        raise ConfigError(
            f"cannot serve metrics on port {port}: prometheus_client is not installed; "
            "install the metrics extra (pip install 'tether[metrics]') or drop --metrics-port"
        )
    _PROMETHEUS.start_http_server(port)
