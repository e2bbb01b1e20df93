// The worked example runs end to end with its one command: events routed to
// Redis Streams, outbox domain events, a projection rebuilt into a new stream
// while the application writes, both projections equal to the database.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'event-sourcing', 'run.js');

describe('examples/event-sourcing (embedded PostgreSQL 18, redis-server)', () => {
  it('rebuilds the projection blue-green and switches over', async () => {
    const env = { ...process.env };
    delete env.REDIS_URL;
    delete env.KAFKA_BROKERS;
    const child = spawn(process.execPath, [EXAMPLE], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
    clearTimeout(timer);
    assert.equal(code, 0, `example failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, /re-emitted \d+ rows while the application kept writing/);
    assert.match(stdout, /v1 and v2 both match the database \(12 accounts\); \d+ domain events on outbox\.event\.account/);
    assert.match(stdout, /switched: balances:current → balances:v2/);
  });
});
