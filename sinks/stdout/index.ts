// JSON lines on standard output (pipes, debugging). A batch is acknowledged
// once the operating system took the bytes; logs go to stderr.
import type { Sink } from '../sink.js';
import { EncodedRowChange, type ChangeEvent } from '../../relay/route/event.js';
import type { StdoutSinkConfig } from '../../config/schema.js';
import { debeziumValues, encodeEvent } from '../formats.js';
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
    const pieces: (Buffer | string)[] = [];
    let text = '';
    // Row changes written as bytes (event-bytes.ts) lie one after the other in their chunk, each ending in a newline: a run of them is written as it is.
    let run: EncodedRowChange | null = null;
    let runEnd = 0;
    const walrelayFormat = this.config.format === 'walrelay';
    for (const event of events) {
      if (walrelayFormat && event instanceof EncodedRowChange && domainRecordOf(event) === undefined) {
        if (run !== null && run.chunk === event.chunk && runEnd === event.start) {
          runEnd = event.end + 1;
          continue;
        }
        if (run !== null) pieces.push(run.chunk.subarray(run.start, runEnd));
        else if (text !== '') { pieces.push(text); text = ''; }
        run = event;
        runEnd = event.end + 1;
        continue;
      }
      if (run !== null) { pieces.push(run.chunk.subarray(run.start, runEnd)); run = null; }
      const domain = domainRecordOf(event);
      if (domain) text += domainRecordJson(domain) + '\n';
      else if (this.config.format !== 'debezium') text += encodeEvent(event, this.config.format) + '\n';
      // Debezium: each record's value on its own line; tombstones have none.
      else for (const value of debeziumValues(event, { database: this.database, debezium: this.config.debezium })) text += value + '\n';
    }
    if (run !== null) pieces.push(run.chunk.subarray(run.start, runEnd));
    else if (text !== '') pieces.push(text);
    const payload = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces.map((piece) => (typeof piece === 'string' ? Buffer.from(piece) : piece)));
    return new Promise((resolve, reject) => {
      this.out.write(payload, (error) => (error ? reject(error) : resolve()));
    });
  }

  async close(): Promise<void> {}
}
