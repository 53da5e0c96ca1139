// mqtt.js over WebSocket (as a browser app would use it) against Junction's Web-MQTT listener.
const { test } = require('node:test');
const assert = require('node:assert');
const mqtt = require('mqtt');

const url = `ws://127.0.0.1:${process.env.JUNCTION_MQTT_WS_PORT}/ws`;
const TIMEOUT = 15000;

function within(promise, what) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

test('publish and subscribe over WebSocket, MQTT 3.1.1 and 5', async () => {
  for (const protocolVersion of [4, 5]) {
    const client = await within(mqtt.connectAsync(url, { protocolVersion, clientId: `mqttjs-${protocolVersion}`, reconnectPeriod: 0 }), 'connect');
    await client.subscribeAsync('web/+/events', { qos: 1 });
    const got = new Promise((resolve) => client.once('message', (topic, payload, packet) => resolve({ topic, payload, packet })));
    await client.publishAsync('web/ui/events', 'clicked', { qos: 1 });
    const m = await within(got, 'message');
    assert.strictEqual(m.topic, 'web/ui/events');
    assert.strictEqual(m.payload.toString(), 'clicked');
    assert.strictEqual(m.packet.qos, 1);
    await client.endAsync();
  }
});
