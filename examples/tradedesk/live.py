"""The live page: a user's organization channel, updating as the outbox's events arrive.

``install(app)`` adds three things to the trade desk:

* ``GET /realtime-token`` (API key required): a short-lived JWT naming the caller and its
  organization, for the WebSocket gateway;
* the gateway itself at ``/realtime`` (Tether's :class:`~tether.realtime.Gateway`, the
  Centrifuge protocol; the relay's ``realtime`` sink feeds it through Redis);
* ``GET /live#key=<api key>``: a page that gets a token, subscribes to ``org:<tenant>`` and
  lists each event as it comes, in a few lines of plain JavaScript speaking the protocol.
"""

from __future__ import annotations

import os
import secrets
import time

import jwt
from examples.tradedesk.auth import principal_of, tenant_of
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from tether.realtime import ChannelAccess, Gateway, JwtVerifier, MemoryBackplane, RedisBackplane

TOKEN_TTL = 600


class RealtimeToken(BaseModel):
    token: str
    org: str
    expires_in: int


def install(app: FastAPI, redis_url: str | None = None) -> Gateway:
    # One secret per deployment (TRADEDESK_REALTIME_SECRET), else one per process: tokens
    # then work only against this process's gateway, which is what the demo runs.
    secret = os.environ.get("TRADEDESK_REALTIME_SECRET") or secrets.token_urlsafe(32)
    backplane = RedisBackplane(redis_url) if redis_url else MemoryBackplane()
    gateway = Gateway(JwtVerifier(secret), access=ChannelAccess(), backplane=backplane)
    app.state.realtime = gateway

    @app.get("/realtime-token", response_model=RealtimeToken, tags=["live"])
    async def realtime_token(
        tenant: str = Depends(tenant_of), user: str = Depends(principal_of)
    ) -> RealtimeToken:
        """A token for the WebSocket gateway at /realtime (channel org:<your tenant>)."""
        claims = {"sub": user, "org": tenant, "exp": int(time.time()) + TOKEN_TTL}
        token = jwt.encode(claims, secret, algorithm="HS256")
        return RealtimeToken(token=token, org=tenant, expires_in=TOKEN_TTL)

    @app.get("/live", response_class=HTMLResponse, include_in_schema=False)
    async def live() -> str:
        return PAGE

    app.mount("/realtime", gateway)
    return gateway


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Tradedesk live</title>
<style>
 body { font: 16px sans-serif; margin: 0; background: #f4f4f4; }
 #status { padding: 12px 20px; color: #fff; background: #b00020; font-weight: bold; }
 #status.live { background: #1b873f; }
 ul { list-style: none; padding: 0 20px; }
 li { background: #fff; margin: 8px 0; padding: 10px; border-left: 6px solid #1b873f; }
</style></head>
<body>
<div id="status">connecting</div>
<h2 style="padding: 0 20px">Organization <span id="org">?</span></h2>
<ul id="events"></ul>
<script>
const key = new URLSearchParams(location.hash.slice(1)).get('key') || '';
const status = document.getElementById('status');
const show = (text, live) => { status.textContent = text; status.className = live ? 'live' : ''; };
function add(pub) {
  const event = pub.data || {};
  const li = document.createElement('li');
  li.className = 'event';
  const body = JSON.stringify(event.payload);
  li.textContent = '#' + (pub.offset || '-') + ' ' + event.type + ' ' + body;
  document.getElementById('events').prepend(li);
}
async function start() {
  const answer = await fetch('/realtime-token', { headers: { 'X-API-Key': key } });
  if (!answer.ok) { show('not signed in (' + answer.status + ')', false); return; }
  const { token, org } = await answer.json();
  document.getElementById('org').textContent = org;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(scheme + '://' + location.host + '/realtime/connection/websocket');
  ws.onopen = () => ws.send(JSON.stringify({ id: 1, connect: { token } }));
  ws.onclose = (e) => { show('disconnected (' + e.code + ')', false); setTimeout(start, 1000); };
  ws.onmessage = (message) => {
    for (const line of String(message.data).split('\\n')) {
      if (!line.trim()) continue;
      const reply = JSON.parse(line);
      if (Object.keys(reply).length === 0) { ws.send('{}'); continue; }  // ping -> pong
      if (reply.id === 1 && reply.connect) {
        ws.send(JSON.stringify({ id: 2, subscribe: { channel: 'org:' + org } }));
      } else if (reply.id === 2) {
        show(reply.error ? 'refused: ' + reply.error.message : 'live', !reply.error);
      } else if (reply.push && reply.push.pub) {
        add(reply.push.pub);
      }
    }
  };
}
start();
</script>
</body></html>
"""
