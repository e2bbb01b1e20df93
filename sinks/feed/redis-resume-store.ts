// The walrelay_client resume points of a Redis feed's edges: one key per
// client name, `{<feed>}.walrelay_client.<name in base64url>`, a JSON object
// of topic → last event id sent, expiring after resumeWindowSeconds (SET PX).
// The hash tag puts every point in the feed stream's slot, so with Redis
// Cluster one pipeline reaches them all.
import type { ResumeStore, StoredResume } from '../websocket/protocols/realtime/resume-store.js';
import type { FeedRedis } from './redis-client.js';

export class RedisResumeStore implements ResumeStore {
  constructor(private readonly client: FeedRedis, private readonly feed: string) {}

  private keyOf(name: string): string {
    return `{${this.feed}}.walrelay_client.${Buffer.from(name).toString('base64url')}`;
  }

  async save(points: readonly StoredResume[], windowMs: number): Promise<void> {
    const pipeline = this.client.pipeline();
    for (const point of points) pipeline.set(this.keyOf(point.name), JSON.stringify(point.topics), 'PX', Math.ceil(windowMs));
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error('pipeline discarded');
  }

  async load(name: string): Promise<Record<string, string> | null> {
    const text = await this.client.get(this.keyOf(name));
    return text === null ? null : (JSON.parse(text) as Record<string, string>);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
