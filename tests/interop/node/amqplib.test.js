// Node's amqplib against Junction: assertQueue/assertExchange/bindQueue/prefetch/consume/ack/publish.
const { test } = require('node:test');
const assert = require('node:assert');
const amqp = require('amqplib');

const url = `amqp://guest:guest@127.0.0.1:${process.env.JUNCTION_AMQP_PORT}/%2f`;
const TIMEOUT = 15000;

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function collect(ch, queue, n) {
  return new Promise((resolve) => {
    const got = [];
    ch.consume(queue, (msg) => {
      got.push(msg);
      if (got.length === n) resolve(got);
    });
  });
}

test('work queue with prefetch and manual ack', async () => {
  const conn = await within(amqp.connect(url), 'connect');
  const ch = await conn.createChannel();
  await ch.assertQueue('node_tasks', { durable: true });
  await ch.prefetch(1);
  for (let i = 0; i < 100; i++) {
    ch.sendToQueue('node_tasks', Buffer.from(String(i)), { persistent: true });
  }
  const got = [];
  await within(new Promise((resolve) => {
    ch.consume('node_tasks', (msg) => {
      got.push(Number(msg.content.toString()));
      ch.ack(msg);
      if (got.length === 100) resolve();
    });
  }), 'consume 100');
  assert.deepStrictEqual(got, [...Array(100).keys()]);
  await conn.close();
});

test('topic exchange with bindQueue and headers', async () => {
  const conn = await within(amqp.connect(url), 'connect');
  const ch = await conn.createChannel();
  await ch.assertExchange('node_topic', 'topic', { durable: false });
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, 'node_topic', 'sensors.*.temp');
  ch.publish('node_topic', 'sensors.kitchen.temp', Buffer.from('21.5'), {
    headers: { unit: 'C', nested: { a: 1 } },
    contentType: 'text/plain',
  });
  ch.publish('node_topic', 'sensors.kitchen.humidity', Buffer.from('40'));
  const [msg] = await within(collect(ch, queue, 1), 'topic delivery');
  assert.strictEqual(msg.content.toString(), '21.5');
  assert.strictEqual(msg.fields.routingKey, 'sensors.kitchen.temp');
  assert.strictEqual(msg.properties.contentType, 'text/plain');
  assert.strictEqual(msg.properties.headers.unit, 'C');
  assert.deepStrictEqual(msg.properties.headers.nested, { a: 1 });
  await conn.close();
});

test('confirm channel and a 404 on a missing exchange', async () => {
  const conn = await within(amqp.connect(url), 'connect');
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('node_confirm');
  await within(new Promise((resolve, reject) => {
    ch.sendToQueue('node_confirm', Buffer.from('x'), {}, (err) => (err ? reject(err) : resolve()));
  }), 'confirm');
  const other = await conn.createChannel();
  other.on('error', () => {});
  await assert.rejects(other.checkExchange('node_missing'), /404/);
  await conn.close();
});
