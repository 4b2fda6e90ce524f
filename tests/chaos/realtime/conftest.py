"""The integration tier's gateway fixtures, for the outage tests."""

from tests.integration.realtime.conftest import prefix, start_gateway

__all__ = ["prefix", "start_gateway"]
