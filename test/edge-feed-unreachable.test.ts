// An edge started while the feed's Redis is down waits for it, as the docs
// say (docs/edges.md, "Health and metrics"): it serves, /readyz answers 503
// naming the Redis it cannot reach, and turns 200 once Redis is up.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startEdge, type Edge } from './harness/edges.js';
import { waitFor } from './harness/wait.js';

async function readyz(edge: Edge): Promise<{ status: number; body: { ready: boolean; reasons: string[] } }> {
  const response = await fetch(`http://127.0.0.1:${edge.httpPort}/readyz`);
  return { status: response.status, body: await response.json() as { ready: boolean; reasons: string[] } };
}

describe('walrelay edge whose feed Redis is down at start', () => {
  let redis: TestRedis | undefined;
  let edge: Edge | undefined;

  after(async () => {
    edge?.process.signal('SIGKILL');
    await redis?.stop();
  });

  it('starts, reports the unreachable Redis on /readyz, and follows the feed once Redis is up', async () => {
    redis = await startRedis();
    await redis.shutdownSaving();
    const address = new URL(redis.url).host;
    edge = await startEdge({ redis: { url: redis.url }, name: 'unreachable.feed' });
    let last = await readyz(edge);
    await waitFor(async () => (last = await readyz(edge!)).body.reasons.some((reason) => reason.includes(address)), { what: `a /readyz reason naming ${address}` })
      .catch((error) => { throw new Error(`${(error as Error).message}: ${JSON.stringify(last)}`); });
    assert.equal(last.status, 503);
    assert.match(last.body.reasons.join('\n'), /not reachable/);
    await redis.restart();
    await waitFor(async () => (last = await readyz(edge!)).status === 200, { what: '/readyz 200 once Redis is up', timeoutMs: 30_000 });
    assert.equal(await Promise.race([edge.process.exited, Promise.resolve('running')]), 'running');
  });
});
