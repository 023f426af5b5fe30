// node-redis 6 client-side caching (RESP3 + CLIENT TRACKING, served by bulwark):
// reads are served from the library's local cache, and a change made directly
// on Redis (bypassing bulwark) invalidates it: the next read sees the new value.
// Usage: node node_csc.js BULWARK_PORT REDIS_PORT
'use strict';
const assert = require('node:assert/strict');
const { createClient, BasicClientSideCache } = require('redis');

const [port, redisPort] = process.argv.slice(2).map(Number);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred, what) {
  for (let i = 0; i < 200; i++) {
    if (await pred()) return;
    await sleep(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

(async () => {
  const direct = createClient({ url: `redis://127.0.0.1:${redisPort}`, RESP: 2 });
  await direct.connect();
  await direct.set('csc:k', 'v1');
  await direct.hSet('csc:h', { f: '1' });

  const cache = new BasicClientSideCache({ ttl: 0, maxEntries: 0 });
  const c = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 3, clientSideCache: cache });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await c.connect();

  // the first read goes to bulwark, the next ones come from the local cache
  assert.equal(await c.get('csc:k'), 'v1');
  const before = cache.stats();
  for (let i = 0; i < 10; i++) assert.equal(await c.get('csc:k'), 'v1');
  const after = cache.stats();
  assert.equal(after.hitCount - before.hitCount, 10, 'reads served from the local cache');
  assert.deepEqual({ ...(await c.hGetAll('csc:h')) }, { f: '1' });
  assert.ok(cache.size() >= 2);

  // a write made directly on Redis: bulwark's watch sees it and tells the client
  await direct.set('csc:k', 'v2');
  await waitFor(async () => (await c.get('csc:k')) === 'v2', 'the direct write to reach the cache');
  await direct.hSet('csc:h', { f: '2' });
  await waitFor(async () => (await c.hGetAll('csc:h')).f === '2', 'the direct HSET');

  // a write through bulwark by another client
  const other = createClient({ url: `redis://127.0.0.1:${port}` });
  await other.connect();
  assert.equal(await c.get('csc:k'), 'v2');
  await other.set('csc:k', 'v3');
  await waitFor(async () => (await c.get('csc:k')) === 'v3', 'the write through bulwark');

  // the client's own write
  await c.set('csc:k', 'v4');
  assert.equal(await c.get('csc:k'), 'v4');

  // a flush empties the local cache
  assert.equal(await c.get('csc:k'), 'v4');
  await direct.flushAll();
  await waitFor(async () => (await c.get('csc:k')) === null, 'the FLUSHALL');

  await c.quit();
  await other.quit();
  await direct.quit();
  assert.deepEqual(errors, []);
  console.log('node-redis client-side cache through bulwark ok');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
