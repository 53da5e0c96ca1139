// The web console in a real headless browser: Debian's chromium driven by playwright-core
// (which downloads nothing; executablePath points at the system browser), against the
// Junction under test, with pika and mqtt.js as the clients on the other side.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const mqtt = require('mqtt');

const base = `http://127.0.0.1:${process.env.JUNCTION_MANAGEMENT_PORT}`;
const mqttUrl = `mqtt://127.0.0.1:${process.env.JUNCTION_MQTT_PORT}`;
const executablePath = process.env.JUNCTION_CHROMIUM || '/usr/bin/chromium';
// Screenshots go to docs/ when asked (JUNCTION_UPDATE_SCREENSHOTS=1), else to a temp dir.
const shots = process.env.JUNCTION_UPDATE_SCREENSHOTS
  ? path.resolve(__dirname, '../../../docs')
  : fs.mkdtempSync(path.join(os.tmpdir(), 'junction-console-'));
const TIMEOUT = 15000;

function within(promise, what) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** Runs helpers/pika_client.py VERB ARGS; resolves with {code, out}. `onLine` sees each line. */
function pika(args, onLine) {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [path.join(__dirname, 'helpers', 'pika_client.py'), ...args], { env: process.env });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      if (onLine) for (const line of String(d).split('\n').filter(Boolean)) onLine(line);
    });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out: out.trim() }));
  });
}

async function apiGet(p) {
  const r = await fetch(base + '/api' + p, { headers: { Authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') } });
  assert.strictEqual(r.status, 200, `GET ${p}`);
  return r.json();
}

let browser;
let page;
const pageErrors = [];

before(async () => {
  browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  if (browser) await browser.close();
});

async function logIn(p, user, pass) {
  await p.goto(base + '/');
  await p.fill('input[name=user]', user);
  await p.fill('input[name=pass]', pass);
  await p.click('button[type=submit]');
}

test('a wrong password is refused on the login page, without a browser dialog', async () => {
  await logIn(page, 'guest', 'wrong');
  await page.getByText('Login failed').waitFor();
  assert.strictEqual(await page.locator('#nav').isVisible(), false);
});

test('log in and see the queue pika created, with its count', async () => {
  const made = await pika(['declare', 'console-orders', '5']);
  assert.strictEqual(made.code, 0, made.out);
  await logIn(page, 'guest', 'guest');
  await page.locator('#whoami').getByText('guest').waitFor();
  await page.goto(base + '/#/queues');
  const row = page.locator('tr', { has: page.getByRole('link', { name: 'console-orders', exact: true }) });
  await row.locator('td', { hasText: /^5$/ }).first().waitFor();
  await page.goto(base + '/#/queues/%2F/console-orders');
  await page.locator('[data-count=ready]', { hasText: /^5$/ }).waitFor();
  await page.screenshot({ path: path.join(shots, 'console-queue.png'), fullPage: true });
  await page.goto(base + '/');
  await page.locator('.chart canvas').first().waitFor();
  await page.locator('.tile', { hasText: 'Queues' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'console-overview.png'), fullPage: true });
  for (const f of ['console-queue.png', 'console-overview.png']) {
    const png = fs.readFileSync(path.join(shots, f));
    assert.ok(png.length > 10000 && png.subarray(1, 4).toString() === 'PNG', `${f} is a real screenshot`);
  }
});

test('a message published from the page reaches a pika consumer', async () => {
  let ready;
  const isReady = new Promise((r) => { ready = r; });
  const receiving = pika(['receive', 'console-inbox', '10'], (line) => line === 'ready' && ready());
  await within(isReady, 'pika consumer ready');
  await page.goto(base + '/#/queues/%2F/console-inbox');
  const publish = page.locator('section', { hasText: 'Publish a message' });
  await publish.locator('textarea[name=payload]').fill('hello from the console');
  await publish.getByRole('button', { name: 'Publish message' }).click();
  await publish.getByText('Message published.').waitFor();
  const got = await within(receiving, 'pika receives');
  assert.strictEqual(got.code, 0, got.out);
  assert.match(got.out, /hello from the console/);
});

test('purge empties the queue, after a confirmation, and says how many went', async () => {
  await page.goto(base + '/#/queues/%2F/console-orders');
  await page.locator('[data-count=ready]', { hasText: /^5$/ }).waitFor();
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Purge messages' }).click();
  await page.locator('#toast', { hasText: 'Purged 5 messages.' }).waitFor();
  await page.locator('[data-count=ready]', { hasText: /^0$/ }).waitFor();
  const q = await apiGet('/queues/%2F/console-orders');
  assert.strictEqual(q.messages, 0);
});

test('get shows a message and, with requeue, leaves it in the queue', async () => {
  const made = await pika(['declare', 'console-peek', '1']);
  assert.strictEqual(made.code, 0, made.out);
  await page.goto(base + '/#/queues/%2F/console-peek');
  const get = page.locator('section', { hasText: 'Get messages' });
  await get.getByRole('button', { name: 'Get messages' }).click();
  await get.locator('.payload', { hasText: 'order 0' }).waitFor();
  await get.getByText('1 message fetched (requeued).').waitFor();
  const q = await apiGet('/queues/%2F/console-peek');
  assert.strictEqual(q.messages, 1);
});

test('a user added on the page logs in over AMQP', async () => {
  const before = await pika(['login', 'console-user', 's3cret-pass']);
  assert.notStrictEqual(before.code, 0, 'no such user yet');
  await page.goto(base + '/#/users');
  const add = page.locator('section', { hasText: 'Add a user' });
  await add.locator('input[name=name]').fill('console-user');
  await add.locator('input[name=password]').fill('s3cret-pass');
  await add.locator('select[name=tags]').selectOption('management');
  await add.locator('select[name=vhost]').selectOption('/');
  await add.getByRole('button', { name: 'Add user' }).click();
  await add.getByText('User "console-user" added').waitFor();
  const after = await pika(['login', 'console-user', 's3cret-pass']);
  assert.strictEqual(after.code, 0, after.out);
});

test('closing an MQTT connection on the page disconnects the client', async () => {
  const client = await within(mqtt.connectAsync(mqttUrl, { clientId: 'console-device', reconnectPeriod: 0, username: 'guest', password: 'guest' }), 'mqtt connect');
  const closed = new Promise((resolve) => client.once('close', resolve));
  await page.goto(base + '/#/connections');
  const row = page.locator('tr', { hasText: 'MQTT 3.1.1' }).filter({ hasText: 'console-device' });
  await row.waitFor();
  page.once('dialog', (d) => d.accept('maintenance'));
  await row.getByRole('button', { name: 'Close' }).click();
  await within(closed, 'the MQTT client sees its connection closed');
  await page.locator('#toast', { hasText: 'Connection closed.' }).waitFor();
  await page.locator('tr', { hasText: 'console-device' }).waitFor({ state: 'detached' });
});

test('the route test names the queues a key reaches, and publishes nothing', async () => {
  await page.goto(base + '/#/exchanges/%2F/amq.topic');
  const bind = page.locator('section', { hasText: 'Bindings from this exchange' });
  await bind.locator('input[name=destination]').fill('console-inbox');
  await bind.locator('input[name=routing_key]').fill('sensors.*.temp');
  await bind.getByRole('button', { name: 'Bind' }).click();
  await bind.getByText('Bound to queue "console-inbox".').waitFor();
  const route = page.locator('section', { hasText: 'Where would this routing key go?' });
  await route.locator('input[name=routing_key]').fill('sensors.kitchen.temp');
  await route.getByRole('button', { name: 'Where would it go?' }).click();
  await route.getByRole('link', { name: 'console-inbox' }).waitFor();
  await route.getByText('Reaches 1 queue. Nothing was published.').waitFor();
  await route.locator('input[name=routing_key]').fill('lights.kitchen');
  await route.getByRole('button', { name: 'Where would it go?' }).click();
  await route.getByText('would be unroutable').waitFor();
  const q = await apiGet('/queues/%2F/console-inbox');
  assert.strictEqual(q.messages, 0);
});

test('a long queue list draws its first 500 and says how many there are', async () => {
  const made = await pika(['many', 'console-many', '600']);
  assert.strictEqual(made.code, 0, made.out);
  try {
    await page.goto(base + '/#/queues');
    await page.getByText(/Showing 500 of 6\d\d queues/).waitFor();
    assert.strictEqual(await page.locator('main tbody tr').count(), 500);
    await page.getByRole('searchbox', { name: 'Filter queues' }).fill('console-many-0059');
    await page.getByRole('link', { name: 'console-many-00599' }).waitFor();
    assert.strictEqual(await page.locator('main tbody tr').count(), 10, 'console-many-00590 to 00599');
  } finally {
    const gone = await pika(['unmany', 'console-many', '600']);
    assert.strictEqual(gone.code, 0, gone.out);
  }
});

test('on a phone-width screen the pages fit and the menu opens', async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  phone.setDefaultTimeout(TIMEOUT);
  await logIn(phone, 'guest', 'guest');
  await phone.locator('#whoami').waitFor();
  for (const view of ['#/', '#/queues', '#/queues/%2F/console-orders', '#/connections', '#/users']) {
    await phone.goto(base + '/' + view);
    await phone.locator('main h1').waitFor();
    const [scroll, width] = await phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width, `${view} fits a phone (${scroll} <= ${width})`);
  }
  assert.strictEqual(await phone.locator('#nav a', { hasText: 'Exchanges' }).isVisible(), false);
  await phone.locator('#menu').click();
  await phone.locator('#nav a', { hasText: 'Exchanges' }).click();
  await phone.locator('main h1', { hasText: 'Exchanges' }).waitFor();
  await phone.screenshot({ path: path.join(shots, 'console-phone.png'), fullPage: true });
  await phone.close();
  assert.deepStrictEqual(pageErrors, [], 'no script errors on any page');
});
