// Redis Sentinel (`sentinel: { masterName, nodes }`): ioredis asks the
// sentinels for the master's address (SENTINEL get-master-addr-by-name),
// and checks that the server it reaches really is a master. On a failover
// the connection to the old master fails (or a demoted master answers
// READONLY): ioredis reconnects, asks the sentinels again, and the sink sends
// the unacknowledged batch again to the new master. (ioredis's
// failoverDetector, which listens for +switch-master, is left off: in a test
// run it left the client closed for good after a failover.)
// The sink's url still supplies the master's user:password, TLS and /db.
//
// Exactly-once works as with a single Redis: one script per batch, one
// checkpoint key.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisSinkConfig } from '../../config/schema.js';
import { describeError } from '../../relay/errors.js';
import { credentialsOf, pingWithin, scriptCall, writeGroup, type PendingBatch, type RedisTopology, type TopologyOptions } from './topology.js';

type SentinelConfig = NonNullable<RedisSinkConfig['sentinel']>;

export class SentinelTopology implements RedisTopology {
  readonly description: string;
  private readonly client: Redis;
  private master = '';

  constructor(private readonly options: TopologyOptions, sentinel: SentinelConfig, private readonly logger: Logger, private readonly sink: string) {
    const url = new URL(options.url);
    const credentials = credentialsOf(url);
    this.description = `redis master "${sentinel.masterName}" named by sentinels ${sentinel.nodes.join(', ')}`;
    this.client = new Redis({
      sentinels: sentinel.nodes.map((node) => {
        const colon = node.lastIndexOf(':');
        return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
      }),
      name: sentinel.masterName,
      role: 'master',
      sentinelUsername: sentinel.username,
      sentinelPassword: sentinel.password,
      enableTLSForSentinelMode: credentials.tls !== undefined,
      username: credentials.username,
      password: credentials.password,
      tls: credentials.tls,
      db: Number(url.pathname.slice(1) || 0),
      connectTimeout: options.timeoutMs,
      commandTimeout: options.timeoutMs,
      // A WAIT re-sent on a new connection would count none of the writes made on the old one.
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => Math.min(100 * times, 2000),
      sentinelRetryStrategy: (times) => Math.min(100 * times, 2000),
      // A master demoted to replica refuses writes: reconnect, which asks the sentinels again (1 = do not resend; the sink does).
      reconnectOnError: (error) => (/^READONLY/.test(error.message) ? 1 : false),
    });
    this.client.on('error', (error) => logger.debug({ sink, err: describeError(error) }, 'redis sentinel client error'));
    this.client.on('ready', () => {
      const address = `${this.client.stream?.remoteAddress}:${this.client.stream?.remotePort}`;
      if (address !== this.master) logger.info({ sink, master: address, masterName: sentinel.masterName }, this.master ? 'redis sentinel: following the new master' : 'redis sentinel: writing to the master');
      this.master = address;
    });
  }

  get connected(): boolean {
    return this.client.status === 'ready';
  }

  ping(): Promise<void> {
    this.revive();
    return pingWithin(() => this.client.ping(), this.options.timeoutMs, this.description);
  }

  /** A client that ended (it gave up, or was closed under us) is started again: the sink never gives up on its Redis. */
  private revive(): void {
    if (this.client.status !== 'end') return;
    this.logger.warn({ sink: this.sink }, 'redis sentinel client had closed; connecting again');
    this.client.connect().catch(() => undefined);
  }

  async write(batch: PendingBatch): Promise<void> {
    this.revive();
    const checkpoint = this.options.checkpointKey;
    const scripts = checkpoint === null ? null : [scriptCall(checkpoint, batch.entries, this.options.maxLen)];
    batch.appended += await writeGroup(this.client, scripts, batch.entries, this.options);
    batch.entries = [];
  }

  close(): void {
    this.client.disconnect();
  }
}
