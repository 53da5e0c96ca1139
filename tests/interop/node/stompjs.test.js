// @stomp/stompjs over WebSocket (as a browser app would use it) against Junction's Web-STOMP listener.
const { test } = require('node:test');
const assert = require('node:assert');
const { Client } = require('@stomp/stompjs');
const WebSocket = require('ws');

const url = `ws://127.0.0.1:${process.env.JUNCTION_STOMP_WS_PORT}/ws`;
const TIMEOUT = 15000;

function connect() {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
      connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
    });
    const timer = setTimeout(() => reject(new Error('connect timed out')), TIMEOUT);
    client.onConnect = (frame) => {
      clearTimeout(timer);
      resolve({ client, frame });
    };
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
    client.activate();
  });
}

function nextMessage(client, destination, headers = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${destination}`)), TIMEOUT);
    const sub = client.subscribe(destination, (msg) => {
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(msg);
    }, headers);
  });
}

test('subscribe and publish to a topic over WebSocket', async () => {
  const { client, frame } = await connect();
  assert.strictEqual(frame.headers.version, '1.2');
  const got = nextMessage(client, '/topic/sensors.kitchen.temp');
  // Publish after the subscription is known to the broker (a receipt confirms it).
  await new Promise((resolve) => {
    client.watchForReceipt('sub-ready', resolve);
    client.publish({ destination: '/queue/ws_probe', headers: { receipt: 'sub-ready' }, body: 'probe' });
  });
  client.publish({ destination: '/topic/sensors.kitchen.temp', body: '21.5', headers: { 'content-type': 'text/plain', unit: 'C' } });
  const msg = await got;
  assert.strictEqual(msg.body, '21.5');
  assert.strictEqual(msg.headers.unit, 'C');
  assert.strictEqual(msg.headers.destination, '/topic/sensors.kitchen.temp');
  await client.deactivate();
});

test('queue with client acks and a binary body', async () => {
  const { client } = await connect();
  const got = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message')), TIMEOUT);
    client.subscribe('/queue/ws_work', (msg) => {
      clearTimeout(timer);
      msg.ack();
      resolve(msg);
    }, { ack: 'client-individual' });
  });
  const bytes = new Uint8Array([0, 1, 2, 255, 0]);
  client.publish({ destination: '/queue/ws_work', binaryBody: bytes, headers: { 'content-type': 'application/octet-stream' } });
  const msg = await got;
  assert.deepStrictEqual(Array.from(msg.binaryBody), [0, 1, 2, 255, 0]);
  await client.deactivate();
});
