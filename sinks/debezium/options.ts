// Debezium's knobs that walrelay follows (sink key `debezium`), with
// Debezium's defaults.
export interface DebeziumOptions {
  /** decimal.handling.mode */
  decimalHandlingMode: 'precise' | 'string' | 'double';
  /** time.precision.mode */
  timePrecisionMode: 'adaptive' | 'adaptive_time_microseconds' | 'connect';
  /** tombstones.on.delete */
  tombstonesOnDelete: boolean;
  /** topic.prefix: source.name and the first part of topic and stream names. */
  topicPrefix: string;
  /** Kafka Connect's JsonConverter with schemas.enable=true: {"schema": …, "payload": …} (connect-schema.ts). */
  schemas: boolean;
}

export const DEBEZIUM_DEFAULTS: DebeziumOptions = {
  decimalHandlingMode: 'precise',
  timePrecisionMode: 'adaptive',
  tombstonesOnDelete: true,
  topicPrefix: 'walrelay',
  schemas: false,
};

export function debeziumOptions(configured: Partial<DebeziumOptions> | undefined): DebeziumOptions {
  return { ...DEBEZIUM_DEFAULTS, ...configured };
}
