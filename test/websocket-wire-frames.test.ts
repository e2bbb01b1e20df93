// Change frames are framed once (wire-frame.ts) and written under ws to every
// client (client.ts). Checked against ws itself: the bytes equal ws's framing
// at every header size, a real ws client reads them (with and without
// permessage-deflate), in order with control frames sent in the same batch,
// and nothing is written after a close.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { wireTextFrame, wirePayload, WireJoiner } from '../sinks/websocket/wire-frame.js';
import { Client } from '../sinks/websocket/client.js';
import type { Claims } from '../sinks/websocket/auth.js';

/** ws's own framing of a server's text frame. */
async function wsFraming(text: string): Promise<Buffer> {
  const { Sender } = await import('ws') as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
}

/** A server-side ws connection wrapped in a Client, and the browser-side ws reading it. */
async function pair(perMessageDeflate: boolean): Promise<{ client: Client; received: string[]; browser: WebSocket; transport: Duplex; close(): Promise<void> }> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate });
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  const browser = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}/`, { perMessageDeflate });
  const received: string[] = [];
  browser.on('message', (data) => received.push(data.toString()));
  await once(browser, 'open');
  const [socket] = await accepted;
  const transport = (socket as unknown as { _socket: Duplex })._socket;
  const client = new Client(socket, transport, {} as Claims, 1000);
  return {
    client, received, browser, transport,
    async close() {
      browser.terminate();
      for (const connection of server.clients) connection.terminate();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe('websocket wire frames', () => {
  it('are byte for byte what ws frames, at every header size and with multi-byte UTF-8', async () => {
    for (const length of [0, 1, 125, 126, 127, 65535, 65536, 70_000]) {
      const text = 'x'.repeat(length);
      assert.deepEqual(wireTextFrame(text), await wsFraming(text), `length ${length}`);
      assert.equal(wirePayload(wireTextFrame(text)).toString(), text);
    }
    const text = `{"note":"é€😀${'ü'.repeat(100)}"}`;
    assert.deepEqual(wireTextFrame(text), await wsFraming(text));
  });

  it('joins the same frame lists once per batch', () => {
    const [a, b] = [wireTextFrame('a'), wireTextFrame('b')];
    const joiner = new WireJoiner();
    const first = joiner.join([a, b]);
    assert.equal(joiner.join([a, b]), first, 'the same frames: the same joined Buffer');
    assert.notEqual(joiner.join([b, a]), first);
    assert.deepEqual(joiner.join([b, a]), Buffer.concat([b, a]));
  });

  for (const deflate of [false, true]) {
    it(`reach a ws client in order with control frames of the same batch${deflate ? ' (permessage-deflate)' : ''}`, async () => {
      const { client, received, close } = await pair(deflate);
      try {
        assert.equal(client.socket.extensions !== '', deflate, 'deflate negotiated as asked');
        client.beginBatch(new WireJoiner());
        client.sendFrame(wireTextFrame('change 1'), 0);
        client.sendControl('control');
        client.sendFrame(wireTextFrame('change 2'), 1);
        client.sendFrame(wireTextFrame(`change 3 ${'€'.repeat(30_000)}`), 2);
        client.endBatch();
        client.sendFrame(wireTextFrame('change 4'), 3);
        await until(() => received.length === 5);
        assert.deepEqual(received.map((text) => text.slice(0, 8)), ['change 1', 'control', 'change 2', 'change 3', 'change 4']);
        assert.equal(received[3], `change 3 ${'€'.repeat(30_000)}`);
      } finally {
        await close();
      }
    });
  }

  it('are written as the same bytes to clients that get the same frames, also past 64 KiB in one batch', async () => {
    const pairs = [await pair(false), await pair(false)];
    try {
      const writes = pairs.map(({ transport }) => {
        const written: Buffer[] = [];
        const write = transport.write.bind(transport);
        transport.write = ((chunk: Buffer, ...rest: never[]) => { written.push(chunk); return write(chunk, ...rest); }) as typeof transport.write;
        return written;
      });
      const frames = Array.from({ length: 100 }, (_, i) => wireTextFrame(`${i} ${'x'.repeat(1000)}`));
      const joiner = new WireJoiner();
      for (const { client } of pairs) client.beginBatch(joiner);
      for (const [position, frame] of frames.entries()) for (const { client } of pairs) client.sendFrame(frame, position);
      for (const { client } of pairs) client.endBatch();
      assert.ok(writes[0]!.length >= 2, `a batch of 100 kB goes out in 64 KiB pieces (${writes[0]!.length} writes)`);
      assert.equal(writes[0]!.length, writes[1]!.length);
      writes[0]!.forEach((chunk, i) => assert.equal(chunk, writes[1]![i], `write ${i}: one Buffer shared by both clients, not a copy each`));
      await until(() => pairs.every(({ received }) => received.length === 100));
      for (const { received } of pairs) assert.deepEqual(received.map((text) => Number(text.split(' ')[0])), frames.map((_, i) => i));
    } finally {
      for (const { close } of pairs) await close();
    }
  });

  it('are not written after the close frame', async () => {
    const { client, received, browser, transport, close } = await pair(false);
    try {
      const closed = once(browser, 'close');
      client.beginBatch();
      client.sendFrame(wireTextFrame('before'), 0);
      client.socket.close(1013, 'too slow');
      // What reaches the TCP stream from here on: a ws client would silently ignore data after a close frame.
      const writtenAfterClose: Buffer[] = [];
      const write = transport.write.bind(transport);
      transport.write = ((chunk: Buffer, ...rest: never[]) => { writtenAfterClose.push(chunk); return write(chunk, ...rest); }) as typeof transport.write;
      client.sendFrame(wireTextFrame('after'), 1);
      client.endBatch();
      client.sendFrame(wireTextFrame('after 2'), 2);
      const [code] = await closed;
      assert.equal(code, 1013, 'the close frame arrives intact, not corrupted by data after it');
      assert.deepEqual(received, [], 'frames gathered in the batch are dropped once the close frame is out');
      assert.deepEqual(writtenAfterClose, [], 'nothing is written after the close frame');
    } finally {
      await close();
    }
  });
});
