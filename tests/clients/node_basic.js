// node-redis (npm `redis`, default settings: RESP3) and ioredis through bulwark:
// cache get/set, MULTI, pub/sub, BRPOP, HGETALL as a map. Usage: node node_basic.js PORT
'use strict';
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const Redis = require('ioredis');

const port = Number(process.argv[2]);
const url = `redis://127.0.0.1:${port}`;

async function nodeRedis() {
  const c = createClient({ url });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await c.connect();
  const hello = await c.sendCommand(['HELLO']);
  assert.equal(hello.proto, 3, 'node-redis speaks RESP3 by default');
  // cache-aside: miss, fill, hit
  await c.del('nr:user:1');
  assert.equal(await c.get('nr:user:1'), null);
  assert.equal(await c.set('nr:user:1', 'alice', { EX: 60 }), 'OK');
  assert.equal(await c.get('nr:user:1'), 'alice');
  await c.hSet('nr:h', { a: '1', b: '2' });
  assert.deepEqual({ ...(await c.hGetAll('nr:h')) }, { a: '1', b: '2' });
  assert.deepEqual({ ...(await c.hGetAll('nr:nohash')) }, {});
  assert.deepEqual(await c.mGet(['nr:user:1', 'nr:none']), ['alice', null]);
  await c.zAdd('nr:z', [{ score: 1.5, value: 'x' }]);
  assert.equal(await c.zScore('nr:z', 'x'), 1.5);
  // MULTI
  const res = await c.multi().set('nr:m', '1').incr('nr:m').get('nr:m').exec();
  assert.deepEqual(res, ['OK', 2, '2']);
  // database 3 via the URL
  const d3 = createClient({ url: url + '/3' });
  await d3.connect();
  await d3.set('nr:db', 'three');
  assert.equal(await c.get('nr:db'), null);
  assert.equal(await d3.get('nr:db'), 'three');
  // pub/sub on a duplicate, while the same connection keeps serving commands
  const sub = c.duplicate();
  await sub.connect();
  const got = new Promise((resolve) => sub.subscribe('nr:ch', (msg) => resolve(msg)));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await c.publish('nr:ch', 'hello'), 1);
  assert.equal(await got, 'hello');
  await sub.unsubscribe('nr:ch');
  assert.equal(await sub.get('nr:user:1'), 'alice');
  // BRPOP: times out, then gets an element pushed meanwhile
  const blocker = c.duplicate();
  await blocker.connect();
  assert.equal(await blocker.brPop('nr:q', 0.05), null);
  const pending = blocker.brPop('nr:q', 5);
  await new Promise((r) => setTimeout(r, 100));
  await c.lPush('nr:q', 'job');
  assert.deepEqual({ ...(await pending) }, { key: 'nr:q', element: 'job' });
  for (const x of [c, d3, sub, blocker]) await x.quit();
  assert.deepEqual(errors, []);
}

async function ioredis() {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  await c.connect();
  await c.del('io:n');
  await c.set('io:k', 'v', 'EX', 60);
  assert.equal(await c.get('io:k'), 'v');
  assert.equal(await c.get('io:none'), null);
  const r = await c.multi().incr('io:n').incr('io:n').exec();
  assert.deepEqual(r.map((x) => x[1]), [1, 2]);
  await c.quit();
}

(async () => {
  await nodeRedis();
  console.log('node-redis', require('redis/package.json').version, 'ok');
  await ioredis();
  console.log('ioredis', require('ioredis/package.json').version, 'ok');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
