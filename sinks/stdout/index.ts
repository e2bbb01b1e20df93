// JSON lines on standard output (pipes, debugging). A batch is acknowledged
// once the operating system took the bytes; logs go to stderr.
import type { Sink } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { StdoutSinkConfig } from '../../config/schema.js';
import { debeziumRecords, encodeEvent } from '../formats.js';
import { domainRecordJson, domainRecordOf } from '../../relay/stages/domain-event.js';

export class StdoutSink implements Sink {
  readonly name: string;
  readonly durable = true;

  constructor(private readonly config: StdoutSinkConfig, index: number, private readonly out: NodeJS.WritableStream = process.stdout, private readonly database?: string) {
    this.name = config.name ?? `stdout#${index}`;
  }

  async start(): Promise<void> {}

  isReady(): boolean {
    return true;
  }

  write(events: readonly ChangeEvent[]): Promise<void> {
    let text = '';
    for (const event of events) {
      const domain = domainRecordOf(event);
      if (domain) text += domainRecordJson(domain) + '\n';
      else if (this.config.format !== 'debezium') text += encodeEvent(event, this.config.format) + '\n';
      // Debezium: each record's value on its own line; tombstones have none.
      else for (const record of debeziumRecords(event, { database: this.database, debezium: this.config.debezium })) if (record.value !== null) text += record.value + '\n';
    }
    return new Promise((resolve, reject) => {
      this.out.write(text, (error) => (error ? reject(error) : resolve()));
    });
  }

  async close(): Promise<void> {}
}
