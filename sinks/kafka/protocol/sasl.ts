// SASL on a fresh broker connection: SaslHandshake names the mechanism, then
// SaslAuthenticate carries its exchange. PLAIN sends the credentials once;
// SCRAM-SHA-256/512 (RFC 5802/7677) proves the password without sending it
// and checks the server's signature, so a fake broker cannot pass.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KafkaConnection } from './connection.js';
import {
  API, KafkaResponseError,
  writeSaslHandshakeRequest, readSaslHandshakeResponse,
  writeSaslAuthenticateRequest, readSaslAuthenticateResponse,
} from './messages.js';

export interface SaslCredentials {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export async function authenticate(connection: KafkaConnection, credentials: SaslCredentials): Promise<void> {
  const mechanism = credentials.mechanism.toUpperCase();
  const handshake = readSaslHandshakeResponse(await connection.request(API.saslHandshake, (w) => writeSaslHandshakeRequest(w, mechanism)));
  if (handshake.errorCode !== 0) {
    throw new KafkaResponseError(handshake.errorCode, `SASL ${mechanism} on ${connection.address}`, `the broker offers ${handshake.mechanisms.join(', ') || 'none'}`);
  }
  const exchange = async (bytes: Buffer): Promise<Buffer> => {
    const response = readSaslAuthenticateResponse(await connection.request(API.saslAuthenticate, (w) => writeSaslAuthenticateRequest(w, bytes)));
    if (response.errorCode !== 0) throw new KafkaResponseError(response.errorCode, `SASL ${mechanism} as ${credentials.username}`, response.errorMessage);
    return response.authBytes;
  };
  if (credentials.mechanism === 'plain') {
    await exchange(Buffer.from(`\u0000${credentials.username}\u0000${credentials.password}`));
    return;
  }
  await scram(credentials, credentials.mechanism === 'scram-sha-256' ? 'sha256' : 'sha512', exchange);
}

async function scram(credentials: SaslCredentials, hash: 'sha256' | 'sha512', exchange: (bytes: Buffer) => Promise<Buffer>): Promise<void> {
  const hmac = (key: Buffer, text: string) => createHmac(hash, key).update(text).digest();
  const clientNonce = randomBytes(24).toString('base64');
  const clientFirstBare = `n=${escapeSaslName(credentials.username)},r=${clientNonce}`;
  const serverFirst = (await exchange(Buffer.from(`n,,${clientFirstBare}`))).toString();
  const fields = new Map(serverFirst.split(',').map((field) => [field[0], field.slice(2)] as const));
  const nonce = fields.get('r') ?? '';
  const salt = Buffer.from(fields.get('s') ?? '', 'base64');
  const iterations = Number(fields.get('i'));
  if (!nonce.startsWith(clientNonce) || salt.length === 0 || !Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`SCRAM: unexpected server-first-message "${serverFirst}"`);
  }
  const saltedPassword = pbkdf2Sync(credentials.password.normalize('NFKC'), salt, iterations, hash === 'sha256' ? 32 : 64, hash);
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = createHash(hash).update(clientKey).digest();
  const clientFinalWithoutProof = `c=biws,r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
  const clientSignature = hmac(storedKey, authMessage);
  const proof = Buffer.from(clientKey.map((byte, i) => byte ^ clientSignature[i]));
  const serverFinal = (await exchange(Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`))).toString();
  const expected = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
  const received = Buffer.from(serverFinal.startsWith('v=') ? serverFinal.slice(2) : '', 'base64');
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
    throw new Error(`SCRAM: the broker's signature does not match (server-final-message "${serverFinal}")`);
  }
}

function escapeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}
