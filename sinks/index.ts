// Builds the configured sinks. Each sink's module (and its client library)
// is loaded only when a sink of that type is configured.
import type { Logger } from 'pino';
import type { SinkConfig } from '../config/schema.js';
import type { Sink, SinkContext } from './sink.js';

export async function createSink(config: SinkConfig, index: number, logger: Logger, context: SinkContext = { slot: 'walrelay' }): Promise<Sink> {
  switch (config.type) {
    case 'redis': return new (await import('./redis/index.js')).RedisSink(config, index, logger, context);
    case 'stdout': return new (await import('./stdout/index.js')).StdoutSink(config, index, process.stdout, context.database);
    case 'kafka': return new (await import('./kafka/index.js')).KafkaSink(config, index, logger, context);
    case 'websocket': return new (await import('./websocket/index.js')).WebsocketSink(config, index, logger, context);
    case 'feed': return new (await import('./feed/index.js')).FeedSink(config, index, logger, context.database);
    case 'webhook': return new (await import('./webhook/index.js')).WebhookSink(config, index, logger, context);
    case 'nats': return new (await import('./nats/index.js')).NatsSink(config, index, logger, context);
    case 'rabbitmq': return new (await import('./rabbitmq/index.js')).RabbitmqSink(config, index, logger, context);
  }
}
