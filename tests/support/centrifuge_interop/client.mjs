// Drives the official centrifuge SDK (npm, unchanged) under Node.js for Tether's tests.
// Usage: node client.mjs <ws url> <token> <channel>
// Prints one JSON line per event: {"event": "connected" | "subscribed" | "publication" |
// "unsubscribed" | "disconnected" | "error", ...}. Exits when stdin closes.
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';

const [url, token, channel] = process.argv.slice(2);
const say = (event, body) => process.stdout.write(JSON.stringify({ event, ...body }) + '\n');

const client = new Centrifuge(url, { token, websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 500 });
client.on('connected', (ctx) => say('connected', { client: ctx.client }));
client.on('disconnected', (ctx) => say('disconnected', { code: ctx.code, reason: ctx.reason }));
client.on('error', (ctx) => say('error', { message: String(ctx.error && ctx.error.message) }));

const sub = client.newSubscription(channel);
sub.on('subscribed', (ctx) => say('subscribed', {
  recoverable: ctx.recoverable, wasRecovering: ctx.wasRecovering, recovered: ctx.recovered,
  offset: ctx.streamPosition ? ctx.streamPosition.offset : null,
  epoch: ctx.streamPosition ? ctx.streamPosition.epoch : null,
}));
sub.on('publication', (ctx) => say('publication', { data: ctx.data, offset: ctx.offset, tags: ctx.tags || null }));
sub.on('unsubscribed', (ctx) => say('unsubscribed', { code: ctx.code, reason: ctx.reason }));
sub.on('error', (ctx) => say('suberror', { message: String(ctx.error && ctx.error.message), code: ctx.error && ctx.error.code }));
sub.subscribe();
client.connect();

process.stdin.on('end', () => { client.disconnect(); process.exit(0); });
process.stdin.resume();
