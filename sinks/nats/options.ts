// The nats.js connection options of a `type: nats` sink: servers, the one
// way of authenticating it names (user/password, token, NKey seed, .creds
// file) and TLS, with secrets read from their files once, at start.
import { credsAuthenticator, nkeyAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { NatsSinkConfig } from '../../config/schema.js';
import { readSecretFile } from '../secret-file.js';

export function connectionOptions(config: NatsSinkConfig, name: string, keyPrefix: string): NodeConnectionOptions {
  const encoder = new TextEncoder();
  const options: NodeConnectionOptions = {
    servers: config.servers,
    name: `walrelay ${name}`,
    // nats.js gives up after 10 attempts by default; a relay waits for its server however long it takes.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    // The first attempt is walrelay's own (index.ts retries it), so a server down at start is waited for too.
    waitOnFirstConnect: false,
    timeout: Math.min(10_000, config.timeoutSeconds * 1000),
    // A server that stops answering is noticed within about timeoutSeconds (two pings unanswered).
    pingInterval: Math.max(1000, (config.timeoutSeconds * 1000) / 2),
    maxPingOut: 2,
    // Wrong credentials are not fixed by trying again (the error is reported instead).
    ignoreAuthErrorAbort: false,
  };
  if (config.user !== undefined) {
    options.user = config.user;
    options.pass = config.password ?? '';
  }
  if (config.token !== undefined) options.token = config.token;
  if (config.nkeySeedFile !== undefined) options.authenticator = nkeyAuthenticator(encoder.encode(readSecretFile(config.nkeySeedFile, `${keyPrefix}.nkeySeedFile`).trim()));
  if (config.credsFile !== undefined) options.authenticator = credsAuthenticator(encoder.encode(readSecretFile(config.credsFile, `${keyPrefix}.credsFile`)));
  if (config.tls) options.tls = { caFile: config.tls.ca, certFile: config.tls.cert, keyFile: config.tls.key };
  return options;
}
