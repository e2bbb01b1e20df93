// A `since` that is not a walrelay event id is refused with bad_request: it
// would otherwise pass for an id ahead of every held event (ids compare as
// text) and the subscription would wait for it forever.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientFrame } from '../../sinks/websocket/protocol.js';

const subscribe = (since: unknown) => () => parseClientFrame(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.items', since }));

it('refuses a since that is not an event id', () => {
  for (const since of ['garbage', '1', '', '000000000000001A-0000000001x y', '0000000001a2b3c4-0000000001']) {
    assert.throws(subscribe(since), (error: Error & { code?: string }) => error.code === 'bad_request' && /event id/.test(error.message), `since ${JSON.stringify(since)}`);
  }
});

it('takes the ids walrelay gives: a change, a message, begin, commit and schema events', () => {
  for (const since of ['00000000016B3A28-0000000003', '00000000016B3A28', '00000000016B3A28-.begin', '00000000016B3A28-~commit', '00000000016B3A28-.schema', '00000000016B3A28-0000000002.schema']) {
    assert.equal((parseClientFrame(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.items', since })) as { since?: string }).since, since);
  }
});
