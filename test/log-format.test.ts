// Logs on a terminal are one readable line per entry; piped, they stay JSON
// lines a collector can parse. log.format / WALRELAY_LOG_FORMAT override both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readableLine } from '../relay/log.js';
import { startPostgres } from './harness/postgres.js';
import { runCli, spawnRelay, writeConfig } from './harness/relay.js';

test('a pino entry becomes one line: time, level, message, then its fields', () => {
  const line = readableLine(JSON.stringify({ level: 30, time: Date.UTC(2026, 11, 5, 12, 0, 1), msg: 'streaming', slot: 'walrelay', from: '0/16B3748', sinks: ['redis#0'] }), false);
  assert.equal(line, '12:00:01 INFO  streaming slot=walrelay from=0/16B3748 sinks=["redis#0"]\n');
  assert.equal(readableLine(JSON.stringify({ level: 40, time: 0, msg: 'retrying', reason: 'connection refused' }), false), '00:00:00 WARN  retrying reason="connection refused"\n');
  assert.equal(readableLine('not json\n', false), 'not json\n', 'anything else passes through');
});

test('run prints readable lines with log.format: pretty and JSON lines with json', async () => {
  const pg = await startPostgres('pg15');
  try {
    for (const format of ['pretty', 'json'] as const) {
      const config = writeConfig({ source: { url: pg.url, slot: `log_${format}`, publication: `log_${format}` }, sinks: [{ type: 'stdout' }], log: { level: 'info', format } });
      assert.equal((await runCli(['setup', '-c', config])).code, 0);
      const relay = spawnRelay(config);
      try {
        await relay.waitForLog(/streaming/, 30_000);
        const streaming = relay.logs().split('\n').find((line) => line.includes('streaming'))!;
        if (format === 'pretty') assert.match(streaming, /^\d\d:\d\d:\d\d INFO {2}streaming slot=log_pretty /);
        else assert.equal(JSON.parse(streaming).msg, 'streaming');
      } finally {
        relay.signal('SIGTERM');
        await relay.exited;
      }
    }
  } finally {
    await pg.stop();
  }
});
