// TLS and SASL to Kafka brokers from the `ssl` and `sasl` keys, for both
// clients walrelay uses: kafkajs (topic administration) and walrelay's own
// protocol code (producer, partition reader). Shared by the kafka sink, the
// feed sink and `walrelay edge`'s Kafka feed, so that they accept the same keys.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import type { SaslCredentials } from './protocol/sasl.js';

export interface KafkaSecurityConfig {
  ssl?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  sasl?: SaslCredentials;
}

/** node:tls options with the PEM files read; undefined without `ssl` (plaintext). */
export function kafkaTls(config: KafkaSecurityConfig): ConnectionOptions | undefined {
  if (!config.ssl) return undefined;
  const read = (file: string | undefined) => (file ? readFileSync(file, 'utf8') : undefined);
  return { ca: config.ssl.ca ? [read(config.ssl.ca)!] : undefined, cert: read(config.ssl.cert), key: read(config.ssl.key), rejectUnauthorized: config.ssl.rejectUnauthorized };
}

/** kafkajs's `ssl` and `sasl` client options. */
export function kafkajsSecurity(config: KafkaSecurityConfig): { ssl?: ConnectionOptions; sasl?: SASLOptions } {
  const sasl = config.sasl ? ({ mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password } as SASLOptions) : undefined;
  return { ssl: kafkaTls(config), sasl };
}

/** The `tls` and `sasl` options of walrelay's own protocol code (KafkaCluster, KafkaProducer, PartitionReader). */
export function protocolSecurity(config: KafkaSecurityConfig): { tls?: ConnectionOptions; sasl?: SaslCredentials } {
  return { tls: kafkaTls(config), sasl: config.sasl };
}
