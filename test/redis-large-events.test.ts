// Events of 64 KiB and more go to Redis from their own bytes, written beside
// the batch's other commands instead of copied into one payload
// (sinks/redis/xadd-payloads.ts): every event must still arrive whole, in order,
// byte for byte, among small ones.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { startRedis } from './harness/redis.js';
import { TransactionAssembler } from '../relay/route/assembler.js';
import { TypeCatalog } from '../relay/source/type-catalog.js';
import { parseRowMessage, type PgoutputMessage } from '../relay/source/pgoutput.js';
import { EncodedRowChange, type ChangeEvent } from '../relay/route/event.js';
import { lsn } from '../relay/lsn.js';
import { RedisSink } from '../sinks/redis/index.js';
import { XaddPayloads } from '../sinks/redis/xadd-payloads.js';
import { redisSinkSchema } from '../config/schema.js';

function u16(value: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(value); return b; }
function u32(value: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(value); return b; }

function insert(id: number, body: string): Buffer {
  const values = [String(id), body].map((value) => Buffer.from(value));
  return Buffer.concat([Buffer.from('I'), u32(16384), Buffer.from('N'), u16(2), ...values.flatMap((value) => [Buffer.from('t'), u32(value.length), value])]);
}

it('writes events of 64 KiB and more from their own bytes, each arriving whole among small ones', async () => {
  const redis = await startRedis();
  const events: ChangeEvent[] = [];
  const assembler = new TransactionAssembler(new TypeCatalog({ query: async () => ({ rows: [] }) }), { event: (event) => events.push(event), commit: () => undefined });
  await assembler.apply({ tag: 'relation', relationId: 16384, schema: 'public', name: 'docs', replicaIdentity: 'd',
    columns: [{ name: 'id', typeOid: 23, typeMod: -1, flags: 1 }, { name: 'body', typeOid: 25, typeMod: -1, flags: 0 }] } as PgoutputMessage, lsn(1n));
  await assembler.apply({ tag: 'begin', finalLsn: lsn(0x2000000n), commitTime: 1n, xid: 7 }, lsn(2n));
  // Around the threshold, far above it, and small events before, between and after.
  const sizes = [5, 65_400, 65_536, 3, 1_048_576, 0, 300_001, 70_000, 12];
  for (const [i, size] of sizes.entries()) assembler.applyRow(parseRowMessage(insert(i + 1, `é"\n${'x'.repeat(size)}`))!, lsn(BigInt(0x1000000 + i)));
  assert.ok(events.every((event) => event instanceof EncodedRowChange));
  const config = redisSinkSchema.parse({ type: 'redis', url: redis.url, stream: 'large' });
  const sink = new RedisSink(config, 0, pino({ level: 'silent' }));
  const client = redis.client();
  try {
    const encoded = new XaddPayloads(config, {}).encode(events);
    assert.ok(Array.isArray(encoded.payload) && encoded.payload.length === 11, 'five large events, written as pieces between the rest');
    await sink.start();
    await sink.write(events);
    await sink.write(events.slice(4, 5)); // a batch of one large event
    const entries = await client.xrangeBuffer('large', '-', '+');
    assert.equal(entries.length, sizes.length + 1);
    for (const [i, [, fields]] of entries.entries()) {
      const event = events[i < sizes.length ? i : 4] as EncodedRowChange;
      assert.equal(fields[0].toString(), 'event');
      assert.ok(fields[1].equals(event.chunk.subarray(event.start, event.end)), `entry ${i}: the event's bytes`);
      assert.equal(JSON.parse(fields[1].toString()).new.body.length, 3 + sizes[i < sizes.length ? i : 4]);
    }
  } finally {
    client.disconnect();
    await sink.close();
    await redis.stop();
  }
});
