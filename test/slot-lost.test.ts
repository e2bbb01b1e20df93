// A slot invalidated (wal_status lost: max_slot_wal_keep_size exceeded) or
// dropped while the relay runs. With source.onSlotLost: fail the relay stops
// with the fix (exit 1, no stack trace); with recreate it recreates the slot,
// sends one gap event to every sink, re-snapshots the published tables as
// read events and streams on, losing nothing committed after the recreation.
//
// The loss is real: max_slot_wal_keep_size = 1MB, the relay frozen with
// SIGSTOP (so it confirms nothing), then WAL segment switches and checkpoints
// until wal_status is 'lost'. Both PostgreSQL 15 and 18 invalidate a slot
// that is still active this way: the checkpointer terminates the walsender
// holding it first. A drop needs the slot released: the walsender is
// terminated while the relay is frozen, so it cannot reconnect in between.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, readStream, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { parseLsn } from '../relay/lsn.js';
import type { ChangeEvent } from '../relay/route/event.js';
import { Writable } from 'node:stream';
import pino from 'pino';
import { parseConfig } from '../config/load.js';
import { setupReplication } from '../relay/setup/setup.js';
import { startRelay } from '../relay/ops/daemon.js';

type Loss = 'lost' | 'dropped';

for (const flavor of PG_FLAVORS) {
  describe(`slot lost or dropped while running (${flavor})`, () => {
    let pgServer: TestPostgres;
    let redis: TestRedis;
    let client: Redis;
    const relays: RelayProcess[] = [];
    let round = 0;

    before(async () => {
      // 1MB: a few WAL segment switches put the slot's restart_lsn out of reach.
      [pgServer, redis] = await Promise.all([startPostgres(flavor, { max_slot_wal_keep_size: '1MB' }), startRedis()]);
      client = redis.client();
    });

    after(async () => {
      for (const relay of relays) relay.signal('SIGKILL');
      client?.disconnect();
      await Promise.all([pgServer?.stop(), redis?.stop()]);
    });

    /** Fresh tables, slot and config for one scenario; the relay streams when it returns. */
    async function startScenario(onSlotLost: 'fail' | 'recreate', rows: number) {
      round++;
      const table = `items${round}`;
      const slot = `walrelay${round}`;
      await pgServer.query(`CREATE TABLE ${table} (id int PRIMARY KEY, note text); CREATE TABLE IF NOT EXISTS noise (id int, body text)`);
      if (rows > 0) await pgServer.query(`INSERT INTO ${table} SELECT i, 'before' FROM generate_series(1, ${rows}) i`);
      const configFile = writeConfig({
        source: { url: pgServer.url, slot, publication: slot, tables: [`public.${table}`], onSlotLost },
        sinks: [
          { type: 'redis', url: redis.url, stream: `r${round}:{schema}.{table}`, messageStream: `r${round}:messages` },
          { type: 'stdout' },
        ],
      });
      const setup = await runCli(['setup', '-c', configFile]);
      assert.equal(setup.code, 0, setup.stderr);
      const relay = spawnRelay(configFile);
      relays.push(relay);
      let stdout = '';
      relay.child.stdout!.on('data', (chunk) => { stdout += chunk; });
      await relay.waitForLog(/"msg":"streaming"/);
      return { table, slot, relay, configFile, stdout: () => stdout, stream: `r${round}:public.${table}`, messages: `r${round}:messages` };
    }

    /** The walsender is gone and the slot idle (the relay is stopped with SIGSTOP meanwhile, so it cannot reconnect). */
    async function releaseSlot(slot: string): Promise<void> {
      await pgServer.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [slot]);
      await waitFor(async () => (await pgServer.query(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [slot]))[0]?.active === false, { what: `slot ${slot} to be released`, timeoutMs: 20_000 });
    }

    /** Makes the slot lose WAL for real: segment switches and checkpoints until wal_status is 'lost'. */
    async function loseSlot(slot: string): Promise<void> {
      await waitFor(async () => {
        await pgServer.query(`INSERT INTO noise VALUES (1, 'x'); SELECT pg_switch_wal(); CHECKPOINT`);
        return (await pgServer.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, [slot]))[0].wal_status === 'lost';
      }, { what: `slot ${slot} to become lost`, timeoutMs: 60_000, intervalMs: 10 });
    }

    /** Takes the slot away while the relay is frozen (SIGSTOP), then lets it run on. */
    async function takeSlotAway(scenario: { slot: string; relay: RelayProcess }, loss: Loss, whileFrozen?: () => Promise<unknown>): Promise<string> {
      scenario.relay.signal('SIGSTOP');
      try {
        await whileFrozen?.();
        if (loss === 'lost') await loseSlot(scenario.slot);
        else await releaseSlot(scenario.slot);
        const [{ confirmed }] = await pgServer.query(`SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`, [scenario.slot]);
        if (loss === 'dropped') await pgServer.query(`SELECT pg_drop_replication_slot($1)`, [scenario.slot]);
        return confirmed;
      } finally {
        scenario.relay.signal('SIGCONT');
      }
    }

    it('a slot lost while walrelay was stopped: fail mode refuses to start, recreate mode recreates it at start', async () => {
      const scenario = await startScenario('fail', 5);
      scenario.relay.signal('SIGTERM');
      assert.equal(await scenario.relay.exited, 0, scenario.relay.logs());
      await pgServer.query(`INSERT INTO ${scenario.table} VALUES (6, 'while stopped')`);
      await loseSlot(scenario.slot);
      const [{ confirmed }] = await pgServer.query(`SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`, [scenario.slot]);

      const refused = spawnRelay(scenario.configFile);
      relays.push(refused);
      assert.equal(await refused.exited, 1, refused.logs());
      assert.match(refused.logs(), /SLOT_LOST: .*onSlotLost: recreate/);

      const recreating = spawnRelay(scenario.configFile, { WALRELAY_SOURCE__ON_SLOT_LOST: 'recreate' });
      relays.push(recreating);
      await recreating.waitForLog(/"msg":"re-snapshot done"/, 60_000);
      await waitFor(async () => new Set((await readStream(client, scenario.stream)).filter((event) => event.op === 'read').map((event) => event.key?.id)).size === 6,
        { what: 'read events for the six rows', timeoutMs: 30_000 });
      const gaps = (await readStream(client, scenario.messages)).filter((event) => event.op === 'gap') as (ChangeEvent & { fromLsn: string })[];
      assert.equal(gaps.length, 1);
      assert.equal(gaps[0].fromLsn, confirmed);
      recreating.signal('SIGTERM');
      assert.equal(await recreating.exited, 0, recreating.logs());
    });

    /** A scenario whose slot is lost while the relay is stopped; the relay runs as a non-superuser role. */
    async function lostWhileStopped(rows: number) {
      const scenario = await startScenario('recreate', rows);
      scenario.relay.signal('SIGTERM');
      assert.equal(await scenario.relay.exited, 0, scenario.relay.logs());
      await pgServer.query(`INSERT INTO ${scenario.table} VALUES (${rows + 1}, 'while stopped')`);
      await loseSlot(scenario.slot);
      const [{ confirmed }] = await pgServer.query(`SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`, [scenario.slot]);
      // What a least-privilege deployment runs as (README, Privileges): REPLICATION, SELECT and UPDATE on the tables.
      await pgServer.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'relay_role') THEN CREATE ROLE relay_role LOGIN REPLICATION PASSWORD 'pw'; END IF; END $$;
        GRANT SELECT, UPDATE ON ${scenario.table} TO relay_role`);
      const roleConfig = writeConfig({
        source: { url: pgServer.url.replace('postgres@', 'relay_role:pw@'), slot: scenario.slot, publication: scenario.slot, tables: [`public.${scenario.table}`], onSlotLost: 'recreate' },
        sinks: [{ type: 'redis', url: redis.url, stream: `r${round}:{schema}.{table}`, messageStream: `r${round}:messages` }],
      });
      return { ...scenario, confirmed, roleConfig };
    }

    /** Every overload of pg_logical_emit_message (PostgreSQL 17 added a flush argument). */
    async function emitMessageGrant(action: 'GRANT' | 'REVOKE'): Promise<void> {
      const functions = await pgServer.query(`SELECT oid::regprocedure::text AS f FROM pg_proc WHERE proname = 'pg_logical_emit_message'`);
      for (const { f } of functions) await pgServer.query(`${action} EXECUTE ON FUNCTION ${f} ${action === 'GRANT' ? 'TO' : 'FROM'} PUBLIC`);
    }

    it('the gap message cannot be written after the new slot was created: the next start writes it, no gap is lost', async () => {
      const scenario = await lostWhileStopped(5);
      // The recreation fails between the slot's creation and the gap message, like a crash or a lost connection there.
      await emitMessageGrant('REVOKE');
      let refused: RelayProcess;
      try {
        refused = spawnRelay(scenario.roleConfig);
        relays.push(refused);
        assert.equal(await refused.exited, 1, refused.logs());
      } finally {
        await emitMessageGrant('GRANT');
      }
      assert.match(refused.logs(), /PERMISSION_DENIED: .*permission denied for function pg_logical_emit_message/);
      assert.doesNotMatch(refused.logs(), /\n\s+at /, 'a stack trace reached the operator');

      const relay = spawnRelay(scenario.roleConfig);
      relays.push(relay);
      await relay.waitForLog(/"msg":"re-snapshot done"/, 60_000);
      await waitFor(async () => new Set((await readStream(client, scenario.stream)).filter((event) => event.op === 'read').map((event) => event.key?.id)).size === 6,
        { what: 'read events for the six rows', timeoutMs: 30_000 });
      const gaps = (await readStream(client, scenario.messages)).filter((event) => event.op === 'gap') as (ChangeEvent & { fromLsn: string })[];
      assert.equal(gaps.length, 1, JSON.stringify(gaps));
      assert.equal(gaps[0].fromLsn, scenario.confirmed);
      const slots = await pgServer.query(`SELECT slot_name, wal_status FROM pg_replication_slots WHERE slot_name = $1 OR slot_name LIKE $1 || '\\_%' ORDER BY 1`, [scenario.slot]);
      assert.deepEqual(slots.map((row) => row.slot_name), [scenario.slot], 'a leftover slot after the recreation finished');
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs());
    });

    it('the slot copy is refused after the gap message was written: the next start finishes, every gap names the same range', async () => {
      const scenario = await lostWhileStopped(5);
      await pgServer.query(`REVOKE EXECUTE ON FUNCTION pg_copy_logical_replication_slot(name, name) FROM PUBLIC`);
      let refused: RelayProcess;
      try {
        refused = spawnRelay(scenario.roleConfig);
        relays.push(refused);
        assert.equal(await refused.exited, 1, refused.logs());
      } finally {
        await pgServer.query(`GRANT EXECUTE ON FUNCTION pg_copy_logical_replication_slot(name, name) TO PUBLIC`);
      }
      assert.match(refused.logs(), /PERMISSION_DENIED: .*permission denied for function pg_copy_logical_replication_slot/);
      assert.doesNotMatch(refused.logs(), /\n\s+at /, 'a stack trace reached the operator');

      const relay = spawnRelay(scenario.roleConfig);
      relays.push(relay);
      await relay.waitForLog(/"msg":"re-snapshot done"/, 60_000);
      await waitFor(async () => new Set((await readStream(client, scenario.stream)).filter((event) => event.op === 'read').map((event) => event.key?.id)).size === 6,
        { what: 'read events for the six rows', timeoutMs: 30_000 });
      const gaps = (await readStream(client, scenario.messages)).filter((event) => event.op === 'gap') as (ChangeEvent & { fromLsn: string; toLsn: string })[];
      assert.ok(gaps.length >= 1, 'no gap event');
      assert.deepEqual(new Set(gaps.map((gap) => `${gap.fromLsn}-${gap.toLsn}`)), new Set([`${scenario.confirmed}-${gaps[0].toLsn}`]), JSON.stringify(gaps));
      const slots = await pgServer.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1 OR slot_name LIKE $1 || '\\_%' ORDER BY 1`, [scenario.slot]);
      assert.deepEqual(slots.map((row) => row.slot_name), [scenario.slot], 'a leftover slot after the recreation finished');
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs());
    });

    it('killed during the re-snapshot, the next start runs the re-snapshot again', async () => {
      const scenario = await lostWhileStopped(5);
      // A table lock that blocks the re-snapshot's reads (FOR SHARE NOWAIT, retried): it waits there, deterministically.
      // (A lock without a transaction id: a row lock would also hold back the slot's creation, which waits for such transactions.)
      const locker = new pg.Client({ connectionString: pgServer.url });
      await locker.connect();
      try {
        await locker.query(`BEGIN; LOCK TABLE ${scenario.table} IN EXCLUSIVE MODE`);
        const killed = spawnRelay(scenario.roleConfig);
        relays.push(killed);
        await killed.waitForLog(/"msg":"recreated the replication slot/, 60_000);
        await waitFor(async () => (await pgServer.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'walrelay-backfill'`)).length > 0,
          { what: 'the re-snapshot to start', timeoutMs: 30_000 });
        killed.signal('SIGKILL');
        await killed.exited;
        assert.doesNotMatch(killed.logs(), /re-snapshot done/, 'the re-snapshot finished before the kill: nothing was proven');
      } finally {
        await locker.end();
      }
      const relay = spawnRelay(scenario.roleConfig);
      relays.push(relay);
      await relay.waitForLog(/"msg":"re-snapshot done"/, 60_000);
      await waitFor(async () => new Set((await readStream(client, scenario.stream)).filter((event) => event.op === 'read').map((event) => event.key?.id)).size === 6,
        { what: 'read events for the six rows', timeoutMs: 30_000 });
      const gaps = (await readStream(client, scenario.messages)).filter((event) => event.op === 'gap') as (ChangeEvent & { fromLsn: string })[];
      assert.equal(new Set(gaps.map((gap) => JSON.stringify(gap))).size, 1, `one gap (re-delivery repeats it exactly): ${JSON.stringify(gaps)}`);
      const slots = await pgServer.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1 OR slot_name LIKE $1 || '\\_%' ORDER BY 1`, [scenario.slot]);
      assert.deepEqual(slots.map((row) => row.slot_name), [scenario.slot], 'a leftover slot after the re-snapshot finished');
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs());
    });

    it('teardown also drops the slot an unfinished recreation left', async () => {
      const scenario = await startScenario('recreate', 0);
      scenario.relay.signal('SIGTERM');
      assert.equal(await scenario.relay.exited, 0, scenario.relay.logs());
      await pgServer.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [`${scenario.slot}_recreating`]);
      const teardown = await runCli(['teardown', '-c', scenario.configFile]);
      assert.equal(teardown.code, 0, teardown.stderr);
      assert.match(teardown.stdout, new RegExp(`dropped replication slot ${scenario.slot}_recreating \\(left by an unfinished slot recreation\\)`));
      assert.deepEqual(await pgServer.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1 || '%'`, [scenario.slot]), []);
    });

    it('stopped during the re-snapshot, it ends the re-snapshot too: no backfill connection outlives stop()', async () => {
      round++;
      const table = `big${round}`;
      const slot = `walrelay${round}`;
      await pgServer.query(`CREATE TABLE ${table} (id int PRIMARY KEY, note text); CREATE TABLE IF NOT EXISTS noise (id int, body text);
        INSERT INTO ${table} SELECT i, 'row' FROM generate_series(1, 200000) i`);
      const config = parseConfig({
        source: { url: pgServer.url, slot, publication: slot, tables: [`public.${table}`], onSlotLost: 'recreate' },
        sinks: [{ type: 'redis', url: redis.url, stream: `r${round}:{schema}.{table}`, messageStream: `r${round}:messages` }],
      }, {});
      let logs = '';
      const logger = pino({ level: 'info' }, new Writable({ write(chunk, _encoding, done) { logs += chunk; done(); } }));
      await setupReplication(config, logger);
      await loseSlot(slot);
      const relay = await startRelay(config, logger);
      try {
        // Recreated at start, then re-snapshotting 200 chunks in the background: stop after the first.
        await waitFor(() => /re-snapshot: public\.big\d+: \d+ rows/.test(logs), { what: 'the re-snapshot to emit a chunk', timeoutMs: 60_000 });
      } finally {
        await relay.stop();
      }
      assert.doesNotMatch(logs, /re-snapshot done/, 'the re-snapshot finished before the stop: nothing was proven');
      const backfills = await pgServer.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'walrelay-backfill'`);
      assert.deepEqual(backfills, [], 'the re-snapshot still runs after stop()');
      assert.match(logs, /stopped during the re-snapshot after a slot recreation: it runs again from the start when walrelay starts again/);
    });

    for (const loss of ['lost', 'dropped'] as const) {
      it(`onSlotLost: fail stops with the fix when the slot is ${loss} (exit 1, no stack trace)`, async () => {
        const scenario = await startScenario('fail', 0);
        await pgServer.query(`INSERT INTO ${scenario.table} VALUES (1, 'seen')`);
        await waitForStreamLength(client, scenario.stream, 1);
        await takeSlotAway(scenario, loss);
        const code = await scenario.relay.exited;
        const logs = scenario.relay.logs();
        assert.equal(code, 1, logs);
        const expected = loss === 'lost' ? /SLOT_LOST: .*onSlotLost: recreate/ : /SLOT_MISSING: .*onSlotLost: recreate/;
        assert.match(logs, expected);
        assert.doesNotMatch(logs, /\n\s+at /, 'a stack trace reached the operator');
      });

      it(`onSlotLost: recreate sends one gap event, re-snapshots and streams on when the slot is ${loss}`, async () => {
        const scenario = await startScenario('recreate', 40);
        await pgServer.query(`INSERT INTO ${scenario.table} VALUES (101, 'streamed')`);
        await waitForStreamLength(client, scenario.stream, 1);
        // A writer commits one row at a time through the loss and the recovery, noting the WAL position before each.
        const writer = new pg.Client({ connectionString: pgServer.url });
        await writer.connect();
        const written: { id: number; before: bigint }[] = [];
        let writing = true;
        const writes = (async () => {
          for (let id = 1000; writing; id++) {
            const [{ lsn }] = (await writer.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows;
            await writer.query(`INSERT INTO ${scenario.table} VALUES ($1, 'writer')`, [id]);
            written.push({ id, before: parseLsn(lsn) });
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })();
        // Committed while the relay is frozen: these changes may die with the slot; the re-snapshot brings the rows back.
        const confirmedBeforeLoss = await takeSlotAway(scenario, loss, () => pgServer.query(
          `INSERT INTO ${scenario.table} SELECT i, 'while frozen' FROM generate_series(102, 110) i; DELETE FROM ${scenario.table} WHERE id = 1`));
        await scenario.relay.waitForLog(/"msg":"recreated the replication slot/, 60_000);
        // Committed after the recreation: must arrive as live changes.
        await pgServer.query(`INSERT INTO ${scenario.table} SELECT i, 'after' FROM generate_series(201, 210) i; UPDATE ${scenario.table} SET note = 'changed' WHERE id = 2`);
        await scenario.relay.waitForLog(/"msg":"re-snapshot done"/, 60_000);
        writing = false;
        await writes;
        await writer.end();
        const rowIds = (await pgServer.query(`SELECT id FROM ${scenario.table} ORDER BY id`)).map((row) => row.id as number);

        const readsAndLive = () => readStream(client, scenario.stream);
        await waitFor(async () => {
          const events = await readsAndLive();
          const read = new Set(events.filter((event) => event.op === 'read').map((event) => event.key?.id));
          const inserted = new Set(events.filter((event) => event.op === 'insert').map((event) => event.key?.id));
          return events.some((event) => event.op === 'update' && event.key?.id === 2) &&
            rowIds.every((id) => read.has(id) || inserted.has(id)) && written.every((row) => read.has(row.id) || inserted.has(row.id));
        }, { what: 'read events for every row, and the changes committed after the recreation', timeoutMs: 60_000 });

        const gaps = (await readStream(client, scenario.messages)).filter((event) => event.op === 'gap');
        assert.equal(gaps.length, 1, JSON.stringify(gaps));
        const [gap] = gaps as (ChangeEvent & { fromLsn: string; toLsn: string })[];
        // fromLsn: everything before it was delivered; at least what the slot had confirmed when it was lost.
        assert.ok(parseLsn(gap.fromLsn) >= parseLsn(confirmedBeforeLoss), `fromLsn ${gap.fromLsn} before the slot's confirmed ${confirmedBeforeLoss}`);
        assert.ok(parseLsn(gap.toLsn) > parseLsn(gap.fromLsn), `toLsn ${gap.toLsn} after fromLsn ${gap.fromLsn}`);
        const stdoutGaps = scenario.stdout().split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((event) => event.op === 'gap');
        assert.deepEqual(stdoutGaps, [gap]);

        const events = await readsAndLive();
        const afterGap = events.filter((event) => event.id > gap.id);
        // Every row of the table at the end is covered after the gap: read by the re-snapshot, or inserted live.
        const covered = new Set(afterGap.filter((event) => event.op === 'read' || event.op === 'insert').map((event) => event.key?.id as number));
        assert.deepEqual(rowIds.filter((id) => !covered.has(id)), []);
        // Every row the writer committed after the new slot's start (toLsn) arrives as a live insert; the ones
        // committed after the gap message itself arrive after the gap event.
        const insertedAt = new Map(events.filter((event) => event.op === 'insert').map((event) => [event.key?.id as number, event.id]));
        const committedAfter = written.filter((row) => row.before >= parseLsn(gap.toLsn));
        assert.ok(committedAfter.length > 0, 'the writer committed nothing after the recreation');
        assert.deepEqual(committedAfter.filter((row) => !insertedAt.has(row.id)).map((row) => row.id), []);
        const afterGapMessage = written.filter((row) => row.before >= parseLsn(gap.commitLsn!));
        assert.deepEqual(afterGapMessage.filter((row) => insertedAt.get(row.id)! < gap.id).map((row) => row.id), []);
        const reads = afterGap.filter((event) => event.op === 'read');
        assert.ok(reads.every((event) => parseLsn(event.lsn) > parseLsn(gap.toLsn)), 'a read event before the new slot\'s start');
        assert.ok(reads.some((event) => event.key?.id === 105 && event.new?.note === 'while frozen'), 'the rows committed while the slot was being lost are re-read');
        assert.ok(!reads.some((event) => event.key?.id === 1), 'a deleted row was read');
        // The update after the recreation arrives, and the newest event of its row carries the newest row (read or update).
        assert.ok(afterGap.some((event) => event.op === 'update' && event.key?.id === 2));
        assert.equal(events.filter((event) => event.key?.id === 2).at(-1)!.new?.note, 'changed');
        const status = await pgServer.query(`SELECT wal_status, active FROM pg_replication_slots WHERE slot_name = $1`, [scenario.slot]);
        assert.equal(status[0].wal_status === 'lost', false);
        scenario.relay.signal('SIGTERM');
        assert.equal(await scenario.relay.exited, 0, scenario.relay.logs());
      });
    }
  });
}
