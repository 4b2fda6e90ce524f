"""Alert channels: a Slack incoming webhook (text + blocks) and a generic webhook (JSON,
Standard Webhooks signature). Both post through :func:`tether.net.safe_client`, so the SSRF
guard applies; private receivers must be allowed by name or CIDR."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from tether.ops.alerts import Alert, AlertDeliveryError

if TYPE_CHECKING:
    import httpx

    from tether.net import SsrfPolicy
    from tether.webhooks.signing import WebhookSecret

USER_AGENT = "tether-alerts"


def _client(url: str, policy: SsrfPolicy | None, what: str) -> httpx.AsyncClient:
    from tether import net

    return net.checked_client(url, policy, what=what)


def _where(url: str) -> str:
    from tether.sinks.http import where

    return where(url)


class _Poster:
    """POST one JSON body; anything but 2xx is an AlertDeliveryError naming host and status
    (never the URL's path, which is the secret of a Slack or n8n webhook)."""

    def __init__(self, client: httpx.AsyncClient, url: str, name: str) -> None:
        self.name = name
        self._client = client
        self._url = url

    async def _post(self, body: bytes, headers: dict[str, str]) -> None:
        import httpx

        from tether import net

        headers = {"content-type": "application/json", "user-agent": USER_AGENT, **headers}
        try:
            request = self._client.build_request("POST", self._url, content=body, headers=headers)
            response = await self._client.send(request, stream=True)
            await response.aclose()  # the status is the answer: the body is never read
        except (httpx.HTTPError, net.UnsafeDestination) as exc:
            raise AlertDeliveryError(
                f"alert channel {self.name!r}: {_where(self._url)}: {type(exc).__name__}: {exc}"
            ) from None
        if not response.is_success:
            raise AlertDeliveryError(
                f"alert channel {self.name!r}: {_where(self._url)} answered {response.status_code}"
            )

    async def close(self) -> None:
        await self._client.aclose()


class SlackAlerts(_Poster):
    """Alerts to a Slack incoming webhook."""

    @classmethod
    def connect(
        cls, webhook_url: str, *, policy: SsrfPolicy | None = None, name: str = "slack"
    ) -> SlackAlerts:
        return cls(_client(webhook_url, policy, f"alert channel {name!r}"), webhook_url, name)

    async def send(self, alert: Alert) -> None:
        await self._post(orjson.dumps(alert.to_slack()), {})


class WebhookAlerts(_Poster):
    """Alerts as signed JSON to any URL: the body is :meth:`Alert.to_json`, ``webhook-id`` the
    alert's id (the same on every try)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        name: str = "webhook",
        secrets: Sequence[WebhookSecret] = (),
    ) -> None:
        super().__init__(client, url, name)
        self._secrets = tuple(secrets)

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        secrets: Sequence[WebhookSecret] = (),
        policy: SsrfPolicy | None = None,
        name: str = "webhook",
    ) -> WebhookAlerts:
        return cls(_client(url, policy, f"alert channel {name!r}"), url, name, secrets)

    async def send(self, alert: Alert) -> None:
        from tether.webhooks import signing

        body = orjson.dumps(alert.to_json())
        headers = {"x-event-type": alert.to_json()["type"]}
        if self._secrets:
            headers.update(signing.sign(alert.id, int(time.time()), body, self._secrets))
        await self._post(body, headers)
