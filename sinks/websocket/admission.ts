// Who may open a connection at all, decided before any token is verified so
// that refusing costs little: the total and per-address connection limits,
// and the browser Origin. The client's address is the socket's, or, only
// when the socket comes from a trusted proxy, the last X-Forwarded-For entry
// that proxy did not add itself.
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { WebsocketSinkConfig } from '../../config/schema.js';

export type Refusal = { status: string; reason: RefusalReason; message: string };

/** The reasons counted in walrelay_websocket_refused_total{reason}. */
export type RefusalReason =
  | 'max_connections' | 'max_connections_per_ip' | 'origin' | 'handshake_timeout' | 'bad_request'
  | 'unauthorized' | 'frame_too_large' | 'frame_rate' | 'too_many_subscriptions';

export class Admission {
  /** Open connections (upgrading or upgraded) per client address. */
  private readonly perAddress = new Map<string, number>();
  private total = 0;
  private readonly proxies = new BlockList();
  private readonly hasProxies: boolean;
  private readonly origins: Set<string> | null;

  constructor(private readonly config: Pick<WebsocketSinkConfig, 'maxConnections' | 'maxConnectionsPerIp' | 'trustedProxies' | 'allowedOrigins'>) {
    for (const entry of config.trustedProxies) {
      const [address, bits] = entry.split('/');
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.proxies.addAddress(address, type);
      else this.proxies.addSubnet(address, Number(bits), type);
    }
    this.hasProxies = config.trustedProxies.length > 0;
    this.origins = config.allowedOrigins ? new Set(config.allowedOrigins.map((origin) => origin.toLowerCase())) : null;
  }

  get connections(): number {
    return this.total;
  }

  /** The address a request comes from (see the file comment). */
  clientAddress(request: IncomingMessage): string {
    const peer = normalize(request.socket.remoteAddress ?? '');
    if (!this.hasProxies || !this.trusted(peer)) return peer;
    const header = request.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((hop) => normalize(hop.trim())).filter((hop) => isIP(hop) !== 0);
    // Walk from the nearest hop back: the first one not a trusted proxy is the client (earlier entries are the client's to forge).
    for (let i = hops.length - 1; i >= 0; i--) if (!this.trusted(hops[i])) return hops[i];
    return hops[0] ?? peer;
  }

  /**
   * Admits a connection from `address` (counted until `release`), or says why not.
   * The Origin is checked here too: a browser on another site must not read the feed with its user's cookies or network position.
   */
  admit(request: IncomingMessage, address: string): Refusal | null {
    if (this.total >= this.config.maxConnections) {
      return { status: '503 Service Unavailable', reason: 'max_connections', message: `too many connections (maxConnections ${this.config.maxConnections})` };
    }
    if ((this.perAddress.get(address) ?? 0) >= this.config.maxConnectionsPerIp) {
      return { status: '429 Too Many Requests', reason: 'max_connections_per_ip', message: `too many connections from ${address} (maxConnectionsPerIp ${this.config.maxConnectionsPerIp})` };
    }
    const origin = request.headers.origin;
    if (this.origins && origin !== undefined && !this.origins.has(origin.toLowerCase())) {
      return { status: '403 Forbidden', reason: 'origin', message: `origin ${origin} is not in allowedOrigins` };
    }
    this.total++;
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    return null;
  }

  release(address: string): void {
    this.total--;
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, left);
  }

  private trusted(address: string): boolean {
    const type = isIP(address);
    return type !== 0 && this.proxies.check(address, type === 6 ? 'ipv6' : 'ipv4');
  }
}

/** "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
function normalize(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
