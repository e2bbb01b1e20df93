// authorization: rls with Supabase's own realtime-js clients on PostgreSQL 15:
// a Supabase-like schema (roles anon and authenticated, auth.uid() reading
// request.jwt.claims, a table whose policy is owner = auth.uid() and whose
// `secret` column authenticated may not read). walrelay connects as a role
// that is no superuser, a member of anon and authenticated only. Two users
// each receive exactly their own rows (deletes reach both, trimmed to the
// key, as Supabase sends them); a claims-mode sink beside it shows today's
// behaviour; a policy changed at run time applies to later changes; a token
// naming a role walrelay is not a member of gets a clear channel error.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient, type RealtimeChannel } from '@supabase/realtime-js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { writeConfig, spawnRelay, runCli, type RelayProcess } from './harness/relay.js';
import { freePort } from './harness/ports.js';
import { mintKey, SECRET } from './harness/realtime.js';
import { waitFor } from './harness/wait.js';

const ALICE = '11111111-1111-4111-8111-111111111111';
const BOB = '22222222-2222-4222-8222-222222222222';

let pg: TestPostgres;
let relay: RelayProcess;
let rlsEndpoint: string;
let claimsEndpoint: string;
const clients: RealtimeClient[] = [];

before(async () => {
  pg = await startPostgres('pg15');
  await pg.query(`
    CREATE ROLE anon NOLOGIN; CREATE ROLE authenticated NOLOGIN; CREATE ROLE service_role NOLOGIN BYPASSRLS;
    CREATE ROLE walrelay LOGIN REPLICATION;
    GRANT anon, authenticated TO walrelay;
    CREATE SCHEMA auth; GRANT USAGE ON SCHEMA auth TO anon, authenticated;
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('request.jwt.claims', true)::json->>'sub', '')::uuid $$;
    CREATE TABLE public.notes (id int PRIMARY KEY, owner uuid NOT NULL, body text, secret text);
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own ON public.notes FOR SELECT TO authenticated USING (owner = auth.uid());
    GRANT SELECT (id, owner, body) ON public.notes TO authenticated;
    CREATE PUBLICATION rls FOR ALL TABLES;
    GRANT CREATE ON DATABASE postgres TO walrelay; -- walrelay.control_key (CREATE SCHEMA IF NOT EXISTS checks this even when the schema exists)
  `);
  const url = pg.url.replace('postgres://postgres@', 'postgres://walrelay@');
  const [rlsPort, claimsPort] = [await freePort(), await freePort()];
  const auth = { jwtSecret: SECRET };
  const configFile = writeConfig({
    source: { url, slot: 'rls', publication: 'rls' },
    sinks: [
      { type: 'websocket', name: 'rls', port: rlsPort, auth, supabase: true, authorization: 'rls' },
      { type: 'websocket', name: 'claims', port: claimsPort, auth, supabase: true },
    ],
  });
  const setup = await runCli(['setup', '-c', configFile]);
  assert.equal(setup.code, 0, setup.stderr);
  relay = spawnRelay(configFile);
  await relay.waitForLog(/"msg":"streaming"/);
  rlsEndpoint = `ws://127.0.0.1:${rlsPort}/realtime/v1`;
  claimsEndpoint = `ws://127.0.0.1:${claimsPort}/realtime/v1`;
});

after(async () => {
  for (const client of clients) await client.disconnect();
  relay?.signal('SIGTERM');
  await relay?.exited;
  await pg?.stop();
});

interface Seen {
  changes: { type: string; id: number; new: Record<string, unknown>; old: Record<string, unknown> }[];
  channel: RealtimeChannel;
}

/** A realtime-js client whose apikey is `token`, subscribed to every change of public.notes. */
async function subscriber(endpoint: string, token: string, name: string, table = 'notes'): Promise<Seen> {
  const client = new RealtimeClient(endpoint, { params: { apikey: token }, transport: WebSocket as any });
  clients.push(client);
  const changes: Seen['changes'] = [];
  const channel = client.channel(name).on('postgres_changes' as any, { event: '*', schema: 'public', table },
    (change: any) => changes.push({ type: change.eventType, id: change.new.id ?? change.old.id ?? change.new.ordinality, new: change.new, old: change.old }));
  await new Promise<void>((resolve, reject) => channel.subscribe((status, error) => {
    if (status === 'SUBSCRIBED') resolve();
    else if (status !== 'CLOSED') reject(new Error(`${status}: ${error?.message}`));
  }));
  return { changes, channel };
}

const user = (sub: string, extra: Record<string, unknown> = {}) => mintKey({ sub, role: 'authenticated', ...extra });

async function until(seen: Seen, id: number, what: string): Promise<void> {
  await waitFor(() => seen.changes.some((change) => change.id === id), { what: `${what} (got ${JSON.stringify(seen.changes.map((change) => `${change.type} ${change.id}`))})`, timeoutMs: 15_000 });
}

const summary = (seen: Seen) => seen.changes.map((change) => `${change.type} ${change.id}`);

describe('authorization: rls', () => {
  let alice: Seen;
  let bob: Seen;
  let control: Seen;

  before(async () => {
    // Alice's token has no tables claim: with rls, every table, filtered by RLS. Bob's names public.*.
    alice = await subscriber(rlsEndpoint, await user(ALICE, { tables: undefined }), 'alice');
    bob = await subscriber(rlsEndpoint, await user(BOB, { tables: ['public.*'] }), 'bob');
    control = await subscriber(claimsEndpoint, await user(ALICE, { tables: ['public.*'] }), 'control');
  });

  it('sends each user exactly the rows their policy lets them select, with only the columns they may read', async () => {
    await pg.query(`INSERT INTO notes VALUES (1, '${ALICE}', 'a1', 's1'), (2, '${BOB}', 'b2', 's2'), (3, '${ALICE}', 'a3', 's3')`);
    await pg.query("UPDATE notes SET body = 'b2!' WHERE id = 2");
    await pg.query("UPDATE notes SET body = 'a1!' WHERE id = 1");
    await pg.query(`INSERT INTO notes VALUES (100, '${ALICE}', 'marker', null), (101, '${BOB}', 'marker', null)`);
    await until(alice, 100, 'alice\'s marker');
    await until(bob, 101, 'bob\'s marker');
    await until(control, 101, 'the control\'s last row');
    assert.deepEqual(summary(alice), ['INSERT 1', 'INSERT 3', 'UPDATE 1', 'INSERT 100']);
    assert.deepEqual(summary(bob), ['INSERT 2', 'UPDATE 2', 'INSERT 101']);
    assert.deepEqual(alice.changes[0]!.new, { id: 1, owner: ALICE, body: 'a1' }, 'no secret: authenticated may not read that column');
    assert.deepEqual(bob.changes[1]!.new, { id: 2, owner: BOB, body: 'b2!' });
    // claims mode (authorization omitted): today's behaviour, every row the tables claim allows, every column.
    assert.deepEqual(summary(control), ['INSERT 1', 'INSERT 2', 'INSERT 3', 'UPDATE 2', 'UPDATE 1', 'INSERT 100', 'INSERT 101']);
    assert.equal(control.changes[1]!.new.secret, 's2');
  });

  it('sends deletes to every subscriber, the old record trimmed to the primary key (Supabase\'s behaviour)', async () => {
    await pg.query('DELETE FROM notes WHERE id = 3');
    await pg.query(`INSERT INTO notes VALUES (102, '${ALICE}', 'marker', null), (103, '${BOB}', 'marker', null)`);
    await until(alice, 102, 'alice\'s marker');
    await until(bob, 103, 'bob\'s marker');
    for (const seen of [alice, bob]) {
      const deleted = seen.changes.filter((change) => change.type === 'DELETE');
      assert.deepEqual(deleted.map((change) => change.old), [{ id: 3 }]);
    }
  });

  it('applies a policy changed at run time to the changes after it', async () => {
    await pg.query(`INSERT INTO notes VALUES (4, '${ALICE}', 'before', null); INSERT INTO notes VALUES (104, '${BOB}', 'marker', null)`);
    await until(bob, 104, 'bob\'s marker');
    await pg.query('CREATE POLICY shared ON notes FOR SELECT TO authenticated USING (body = \'shared\')');
    await pg.query(`INSERT INTO notes VALUES (5, '${ALICE}', 'shared', null); INSERT INTO notes VALUES (105, '${BOB}', 'marker', null)`);
    await until(bob, 105, 'bob\'s second marker');
    const bobIds = bob.changes.map((change) => change.id);
    assert.ok(!bobIds.includes(4), 'row 4 was alice\'s alone when it was checked');
    assert.ok(bobIds.includes(5), 'row 5 is readable by everyone under the new policy');
    await pg.query('DROP POLICY shared ON notes');
  });

  it('shares checks between subscribers of the same token without mixing them up: one leaving does not stop its twin, a refreshed token changes the rows', async () => {
    const aliceToken = await user(ALICE, { tables: ['public.*'] });
    const [twinA, twinB] = [await subscriber(rlsEndpoint, aliceToken, 'twin-a'), await subscriber(rlsEndpoint, aliceToken, 'twin-b')];
    const switcher = await subscriber(rlsEndpoint, aliceToken, 'switcher');
    await pg.query(`INSERT INTO notes VALUES (20, '${ALICE}', 'a20', null), (21, '${BOB}', 'b21', null)`);
    await until(twinB, 20, 'the second twin\'s row');
    await until(bob, 21, 'bob\'s row');
    await twinA.channel.unsubscribe();
    // The switcher's channel gets Bob's token (realtime-js pushes access_token): from now on Bob's rows, not Alice's.
    await clients.at(-1)!.setAuth(await user(BOB, { tables: ['public.*'] }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await pg.query(`INSERT INTO notes VALUES (22, '${ALICE}', 'a22', null), (23, '${BOB}', 'b23', null), (107, '${BOB}', 'marker', null)`);
    await until(twinB, 22, 'the second twin\'s row after the first left');
    await until(switcher, 107, 'the switched channel\'s marker');
    await until(bob, 107, 'bob\'s marker');
    assert.deepEqual(summary(twinB).filter((line) => !line.startsWith('DELETE')), ['INSERT 20', 'INSERT 22']);
    assert.deepEqual(summary(switcher), ['INSERT 20', 'INSERT 23', 'INSERT 107']);
    assert.deepEqual(summary(twinA), ['INSERT 20']);
  });

  it('checks a table with a column named ordinality (the batched lookup\'s own column name)', async () => {
    await pg.query(`
      CREATE TABLE public.odd (ordinality int PRIMARY KEY, owner uuid NOT NULL);
      ALTER TABLE public.odd ENABLE ROW LEVEL SECURITY;
      CREATE POLICY own ON public.odd FOR SELECT TO authenticated USING (owner = auth.uid());
      GRANT SELECT ON public.odd TO authenticated;`);
    const odd = await subscriber(rlsEndpoint, await user(ALICE, { tables: ['public.*'] }), 'odd', 'odd');
    await pg.query(`INSERT INTO odd VALUES (1, '${BOB}'), (2, '${ALICE}'); INSERT INTO notes VALUES (108, '${ALICE}', 'marker', null)`);
    await until(alice, 108, 'alice\'s marker');
    await until(odd, 2, 'alice\'s row of odd');
    assert.deepEqual(summary(odd), ['INSERT 2']);
  });

  it('withholds only the changes of claims whose check fails, not those of the others checked with them', async () => {
    // auth.uid() casts sub to uuid: for this token every check fails ("invalid input syntax for type uuid").
    const broken = await subscriber(rlsEndpoint, await user('not-a-uuid', { tables: ['public.*'] }), 'broken');
    for (let round = 0; round < 2; round++) {
      const id = 110 + round;
      await pg.query(`INSERT INTO notes VALUES (${id}, '${ALICE}', 'checked beside a failing check', null)`);
      await until(alice, id, `alice's row ${id} beside the failing claims`);
    }
    assert.deepEqual(summary(broken), []);
    await waitFor(() => /row-level security check failed.*invalid input syntax for type uuid/.test(relay.logs()) || /invalid input syntax for type uuid.*row-level security check failed/.test(relay.logs()),
      { what: 'the failed check logged' });
  });

  it('refuses a channel whose token names a role walrelay cannot act as, with a clear error', async () => {
    await assert.rejects(subscriber(rlsEndpoint, await mintKey({ sub: ALICE, role: 'service_role' }), 'service'),
      /CHANNEL_ERROR: .*cannot check row-level security as role "service_role".*not a member/);
    await assert.rejects(subscriber(rlsEndpoint, await mintKey({ sub: ALICE, role: 'nosuchrole' }), 'nosuch'), /CHANNEL_ERROR: .*"nosuchrole" does not exist/);
    // The relay is still serving the others.
    await pg.query(`INSERT INTO notes VALUES (106, '${ALICE}', 'marker', null)`);
    await until(alice, 106, 'alice\'s marker after the refused joins');
    assert.match(relay.logs(), /GRANT service_role TO walrelay/);
  });
});
