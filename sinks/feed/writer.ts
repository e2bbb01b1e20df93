// What the feed sink needs from where the feed lives (one Redis stream or one Kafka topic).
export interface FeedWriter {
  /** Connects (and creates the topic when missing); a retriable failure lets the relay start and retry. */
  start(): Promise<void>;
  /** Appends the entries in order; resolves once the server acknowledged all of them durably. */
  append(entries: readonly string[]): Promise<void>;
  /** Why the writer cannot write now, or undefined. */
  readonly connectionProblem: string | undefined;
  close(): Promise<void>;
}
