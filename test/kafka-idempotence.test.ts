// The Kafka sink's retries keep the producer id and sequence numbers: when a
// produce answer is lost after the broker appended the batch, the re-send is
// recognised by the broker and nothing appears twice. A real broker behind a
// proxy that swallows answers; the sink in this process.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import pino from 'pino';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { startTcpProxy, type TcpProxy } from './harness/answer-proxy.js';
import { consumeToEnd } from './harness/kafka-consume.js';
import { freePort } from './harness/ports.js';
import { KafkaSink } from '../sinks/kafka/index.js';
import { kafkaSinkSchema } from '../config/schema.js';
import { errorName, knownErrorCodes } from '../sinks/kafka/protocol/error-codes.js';
import type { ChangeEvent } from '../relay/route/event.js';

function events(from: number, count: number): ChangeEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const id = from + i;
    const lsn = `0/${(0x1000000 + id).toString(16).toUpperCase()}`;
    return { id: `e${id}`, op: 'insert', schema: 'public', table: 'items', key: { id }, new: { id, note: `row ${id}` }, old: null, lsn, commitLsn: lsn, xid: id, commitTime: '2026-11-27T00:00:00.000000Z' };
  });
}

describe('idempotent Kafka producer (Apache Kafka 4 behind a lossy proxy)', () => {
  let kafka: TestKafka;
  let proxy: TcpProxy;
  let sink: KafkaSink;
  const logLines: string[] = [];

  before(async () => {
    const [port, proxyPort] = [await freePort(), await freePort()];
    proxy = await startTcpProxy(proxyPort, port);
    kafka = await startKafka({ port, advertisedPort: proxyPort });
    const logger = pino({ level: 'info' }, { write: (line: string) => { logLines.push(line); } });
    const config = kafkaSinkSchema.parse({ type: 'kafka', brokers: [`127.0.0.1:${proxyPort}`], topic: 'idem.{table}', createTopics: { partitions: 3, replicationFactor: 1 } });
    sink = new KafkaSink(config, 0, logger);
    await sink.start();
  });

  after(async () => {
    await sink?.close();
    await kafka?.stop();
    await proxy?.close();
  });

  it('re-sends a batch whose answer was lost under the same producer id and sequence: no duplicate', async () => {
    await sink.write(events(0, 100));
    for (let round = 1; round <= 3; round++) {
      proxy.loseNextAnswer();
      await sink.write(events(round * 1000, 500));
    }
    assert.equal(proxy.lostAnswers, 3, 'the proxy swallowed three produce answers');
    const records = await consumeToEnd(kafka.brokers, ['idem.items']);
    const ids = records.map((record) => record.headers['walrelay-id']);
    assert.equal(new Set(ids).size, 100 + 3 * 500, 'every event landed');
    assert.equal(records.length, 100 + 3 * 500, `${records.length - new Set(ids).size} duplicates in Kafka`);
    assert.ok(!logLines.some((line) => line.includes('new producer id')), 'the producer kept its id');
  });

  it('names every Kafka error code as the broker jars do', () => {
    assert.equal(errorName(14), 'COORDINATOR_LOAD_IN_PROGRESS');
    const source = 'public class Codes { public static void main(String[] a) { for (org.apache.kafka.common.protocol.Errors e : org.apache.kafka.common.protocol.Errors.values()) System.out.println(e.code() + " " + e.name()); } }';
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    execFileSync('bash', ['-c', `cat > ${dir}/Codes.java`], { input: source });
    const output = execFileSync('java', ['-cp', `${kafka.libs}/*`, `${dir}/Codes.java`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const jar = new Map(output.trim().split('\n').map((line) => { const [code, name] = line.split(' '); return [Number(code), name] as const; }));
    assert.ok(jar.size > 100);
    assert.deepEqual(new Map([...knownErrorCodes()].sort((a, b) => a[0] - b[0])), new Map([...jar].sort((a, b) => a[0] - b[0])));
  });
});
