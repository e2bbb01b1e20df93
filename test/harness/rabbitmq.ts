// The machine's RabbitMQ (127.0.0.1:5672, guest/guest; WALRELAY_TEST_RABBITMQ_URL
// to use another), with names unique to one test run: queues bound to the
// test's exchange, read as they fill, and everything deleted afterwards.
import { randomBytes } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import type { Delivered } from './broker-workload.js';

export const RABBITMQ_URL = process.env.WALRELAY_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const RABBITMQ_PORT = Number(new URL(RABBITMQ_URL).port || 5672);

export interface QueueReader {
  queue: string;
  /** What arrived so far, in queue order. */
  delivered(): Delivered[];
  messages(): ConsumeMessage[];
}

export interface TestRabbit {
  /** A name no other run uses: walrelay-test-<random>-<suffix>. */
  unique(suffix: string): string;
  channel: Channel;
  /** A queue bound to `exchange` with `pattern`, consumed into memory from now on (unless `consume` is false). */
  bindQueue(exchange: string, pattern: string, options?: { durable?: boolean; consume?: boolean }): Promise<QueueReader>;
  /** Deletes the queues and exchanges made or named by this run. */
  cleanUp(exchanges: string[]): Promise<void>;
}

export async function openRabbit(): Promise<TestRabbit> {
  const run = randomBytes(4).toString('hex');
  const model: ChannelModel = await connect(RABBITMQ_URL);
  const channel = await model.createChannel();
  // A failed operation closes the channel with an error event; the operation's own rejection reports it.
  channel.on('error', () => undefined);
  model.on('error', () => undefined);
  const queues: string[] = [];
  return {
    unique: (suffix) => `walrelay-test-${run}-${suffix}`,
    channel,
    async bindQueue(exchange, pattern, options = {}) {
      const queue = `walrelay-test-${run}-q${queues.length}`;
      queues.push(queue);
      await channel.assertQueue(queue, { durable: options.durable ?? false, autoDelete: false });
      await channel.bindQueue(queue, exchange, pattern);
      const received: ConsumeMessage[] = [];
      if (options.consume !== false) await channel.consume(queue, (message) => { if (message) received.push(message); }, { noAck: true });
      return {
        queue,
        messages: () => [...received],
        delivered: () => received.map((message) => ({ messageId: String(message.properties.messageId), body: message.content.toString('utf8') })),
      };
    },
    async cleanUp(exchanges) {
      // A channel of its own: a failed test may have left the other one closed by the broker (e.g. a 404).
      const cleaner = await model.createChannel();
      for (const queue of queues) await cleaner.deleteQueue(queue).catch(() => undefined);
      for (const exchange of exchanges) await cleaner.deleteExchange(exchange).catch(() => undefined);
      await model.close().catch(() => undefined);
    },
  };
}
