// authorization: rls with a multi-host source.url (a PostgreSQL 18 primary and
// its standby, the standby listed first): the row-level security checks run
// on the primary walrelay streams from, never on the standby, and after the
// primary is killed and the standby promoted they follow walrelay to the new
// primary: a user still receives exactly their rows.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
import { startPrimaryAndStandby, type PgPair } from './harness/pg-pair.js';
import { writeConfig, spawnRelay, runCli, type RelayProcess } from './harness/relay.js';
import { freePort } from './harness/ports.js';
import { mintKey, SECRET } from './harness/realtime.js';
import { waitFor } from './harness/wait.js';

const ALICE = '11111111-1111-4111-8111-111111111111';
const BOB = '22222222-2222-4222-8222-222222222222';

describe('authorization: rls with a multi-host source.url', () => {
  let pair: PgPair;
  let relay: RelayProcess;
  const clients: RealtimeClient[] = [];

  before(async () => {
    pair = await startPrimaryAndStandby();
  });

  after(async () => {
    for (const client of clients) await client.disconnect();
    relay?.signal('SIGKILL');
    await relay?.exited;
    await pair?.stop();
  });

  /** Alice's realtime-js subscriber: the ids of the notes it received. */
  async function alice(endpoint: string): Promise<number[]> {
    const client = new RealtimeClient(endpoint, { params: { apikey: await mintKey({ sub: ALICE, role: 'authenticated', tables: ['public.*'] }) }, transport: WebSocket as any });
    clients.push(client);
    const ids: number[] = [];
    const channel = client.channel('alice').on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table: 'notes' }, (change: any) => ids.push(change.new.id));
    await new Promise<void>((resolve, reject) => channel.subscribe((status, error) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status !== 'CLOSED') reject(new Error(`${status}: ${error?.message}`));
    }));
    return ids;
  }

  it('checks on the primary, passing over the standby listed first, and follows a failover', async () => {
    const { primary, standby } = pair;
    await primary.query(`
      CREATE ROLE authenticated NOLOGIN;
      CREATE SCHEMA auth; GRANT USAGE ON SCHEMA auth TO authenticated;
      CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('request.jwt.claims', true)::json->>'sub', '')::uuid $$;
      CREATE TABLE notes (id int PRIMARY KEY, owner uuid NOT NULL);
      ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY own ON notes FOR SELECT TO authenticated USING (owner = auth.uid());
      GRANT SELECT ON notes TO authenticated;
    `);
    const port = await freePort();
    const [hostPrimary, hostStandby] = [`127.0.0.1:${primary.port}`, `127.0.0.1:${standby.port}`];
    const configFile = writeConfig({
      source: { url: `postgres://postgres@${hostStandby},${hostPrimary}/postgres`, slot: 'rls_fo', publication: 'rls_fo', tables: ['public.notes'], timeoutSeconds: 5 },
      sinks: [{ type: 'websocket', port, auth: { jwtSecret: SECRET }, supabase: true, authorization: 'rls' }],
    });
    const setup = await runCli(['setup', '-c', configFile]);
    assert.equal(setup.code, 0, setup.stderr);
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    const ids = await alice(`ws://127.0.0.1:${port}/realtime/v1`);

    await primary.query(`INSERT INTO notes VALUES (1, '${BOB}'), (2, '${ALICE}')`);
    await waitFor(() => ids.includes(2), { what: `alice's row before the failover (got ${ids})`, timeoutMs: 15_000 });
    // The failover slot must be synchronized to the standby before the primary dies.
    await waitFor(async () => {
      await primary.query('SELECT pg_log_standby_snapshot()');
      const [slot] = await standby.query(`SELECT synced, temporary FROM pg_replication_slots WHERE slot_name = 'rls_fo'`);
      return slot?.synced === true && slot.temporary === false;
    }, { what: 'rls_fo synchronized to the standby', timeoutMs: 60_000, intervalMs: 200 });

    await primary.kill9();
    await standby.promote();
    await relay.waitForLog(/"code":"SOURCE_SWITCHED"/, 30_000);
    await standby.query(`INSERT INTO notes VALUES (3, '${BOB}'), (4, '${ALICE}'), (5, '${ALICE}')`);
    await waitFor(() => ids.includes(5), { what: `alice's rows after the failover (got ${ids}; logs ${relay.logs().slice(-2000)})`, timeoutMs: 30_000 });
    assert.deepEqual(ids, [2, 4, 5], 'exactly alice\'s rows, before and after the failover');
  });
});
