// ioredis `Cluster` pointed at bulwark in front of a Redis Cluster: it reads
// bulwark's one-node CLUSTER SLOTS and sends everything to it. 10,000 keys,
// a pipeline, MULTI on hash-tagged keys. Usage: node ioredis_cluster.js PORT
'use strict';
const assert = require('node:assert/strict');
const Redis = require('ioredis');

const port = Number(process.argv[2]);

async function main() {
  const c = new Redis.Cluster([{ host: '127.0.0.1', port }], { enableReadyCheck: true });
  for (let i = 0; i < 10000; i += 500) {
    const p = c.pipeline();
    for (let j = i; j < i + 500; j++) p.set(`io:${j}`, String(j));
    await p.exec();
  }
  for (let i = 0; i < 10000; i += 997) assert.equal(await c.get(`io:${i}`), String(i));
  const res = await c.multi().set('{io}t', '1').incr('{io}t').get('{io}t').exec();
  assert.deepEqual(res, [[null, 'OK'], [null, 2], [null, '2']]);
  const nodes = c.nodes('master');
  assert.equal(nodes.length, 1, 'one node: bulwark');
  assert.equal(nodes[0].options.port, port);
  await c.quit();
  console.log('ioredis Cluster ok');
}

main().catch((e) => { console.error(e); process.exit(1); });
