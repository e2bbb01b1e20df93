// The identity of an exactly-once checkpoint does not depend on where a sink
// sits in the list (issue 24, 4). It used to default to the position
// ("redis#0", "walrelay-<slot>-kafka#0"): inserting or reordering sinks let
// one sink read another's checkpoint and skip events. An exactly-once sink
// now needs a name (or an explicit checkpointKey / transactionalId), and a
// configuration where two sinks would share one checkpoint is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load.js';
import { WalrelayError } from '../relay/errors.js';
import { runCli, writeConfig } from './harness/relay.js';

const source = { url: 'postgres://u@127.0.0.1:1/app' };
const redis = (extra: object) => ({ type: 'redis', url: 'redis://127.0.0.1:1', exactlyOnce: true, ...extra });
const kafka = (extra: object) => ({ type: 'kafka', brokers: ['127.0.0.1:1'], exactlyOnce: true, ...extra });

function refusal(sinks: object[], slot?: string): string {
  try {
    parseConfig({ source: { ...source, ...(slot ? { slot } : {}) }, sinks }, {});
  } catch (error) {
    assert.ok(error instanceof WalrelayError && error.kind === 'config', String(error));
    return error.message;
  }
  assert.fail('the configuration was accepted');
}

describe('exactly-once checkpoint identity', () => {
  it('an exactly-once sink without a name is a config error (exit 2) naming sinks[i].name', async () => {
    const result = await runCli(['validate', '-c', writeConfig({ source, sinks: [{ type: 'stdout' }, redis({})] })]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /sinks\[1\]\.name: an exactly-once sink needs a name/);
    assert.match(refusal([kafka({})]), /sinks\[0\]\.name: an exactly-once sink needs a name/);
  });

  it('accepts names, and explicit checkpointKey / transactionalId without one; not exactly-once needs no name', () => {
    const config = parseConfig({ source, sinks: [redis({ name: 'orders' }), kafka({ name: 'orders' }), redis({ checkpointKey: 'my:checkpoint' }), kafka({ transactionalId: 'my-tx' }), { type: 'redis' }] }, {});
    assert.equal(config.sinks.length, 5);
  });

  it('refuses two sinks that would share one checkpoint, naming the second', () => {
    assert.match(refusal([redis({ name: 'a' }), redis({ name: 'a', url: 'redis://127.0.0.1:2' })]), /sinks\[1\]\.name: .*checkpoint walrelay:checkpoint:walrelay:a.*sinks\[0\]/);
    assert.match(refusal([redis({ name: 'a' }), redis({ name: 'b', checkpointKey: 'walrelay:checkpoint:walrelay:a' })]), /sinks\[1\]\.checkpointKey: .*sinks\[0\]/);
    assert.match(refusal([kafka({ name: 'k' }), kafka({ name: 'other', transactionalId: 'walrelay-s1-k' })], 's1'), /sinks\[1\]\.transactionalId: .*walrelay-s1-k.*sinks\[0\]/);
  });
});
