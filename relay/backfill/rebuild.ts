// The options of `walrelay backfill --sink NAME [--stream-template T]`,
// checked against the configuration before anything is written.
import type { Config } from '../../config/schema.js';
import { configError } from '../errors.js';
import type { BackfillTarget } from './backfill.js';

/** A sink's name as logs, metrics and --sink know it: its `name`, else `<type>#<index>`. */
export function sinkName(config: Config, index: number): string {
  const sink = config.sinks[index];
  return sink.name ?? `${sink.type}#${index}`;
}

export function rebuildTarget(config: Config, sink: string | undefined, streamTemplate: string | undefined): BackfillTarget | undefined {
  if (sink === undefined) {
    if (streamTemplate !== undefined) throw configError('--stream-template: needs --sink NAME (the sink that writes to it)');
    return undefined;
  }
  const names = config.sinks.map((_, index) => sinkName(config, index));
  const index = names.indexOf(sink);
  if (index < 0) throw configError(`--sink: no sink is named ${sink}`, `use one of ${names.join(', ')} (a sink's name key, else type#index)`);
  if (streamTemplate !== undefined) {
    const type = config.sinks[index].type;
    if (type !== 'redis' && type !== 'kafka' && type !== 'nats' && type !== 'rabbitmq') throw configError(`--stream-template: sink ${sink} is a ${type} sink, which has no streams`, 'use it with a redis, kafka, nats or rabbitmq sink');
    if (streamTemplate.trim() === '') throw configError('--stream-template: expected a stream or topic template such as "orders-v2:{schema}.{table}"');
  }
  return { sink, ...(streamTemplate !== undefined ? { stream: streamTemplate } : {}) };
}
