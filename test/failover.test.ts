// A PostgreSQL failover under load (docs/failover.md): a PostgreSQL 18
// primary with a standby that synchronizes failover slots; a writer commits
// rows one by one; the primary is killed (SIGKILL to every process of the
// server) and the standby promoted. walrelay, with both hosts in source.url,
// must resume on the new primary from its synchronized slot: every row the
// new primary has arrives in Redis exactly once (exactlyOnce sink), nothing
// arrives that it lacks (no phantoms), no gap event, no re-snapshot. The time
// from the promotion to streaming again is printed.
//
// Beside it runs a second walrelay whose slot is not a failover slot
// (failoverSlot: false) and whose URL lists the standby first: it starts on
// the primary (the standby is passed over), and after the promotion it stops
// as onSlotLost: fail says, naming the new primary and the fix.
//
// Then the old primary comes back without being demoted (a zombie: a
// primary on the old timeline, with the old slot). When walrelay reconnects,
// the zombie (listed first) is refused with STALE_PRIMARY and what was
// written on it never arrives.
//
// The same again with a primary that hangs instead of dying: SIGSTOP to
// every process of the server, sockets left open, so walrelay hears nothing
// and must notice the silence after source.timeoutSeconds. The standby is
// promoted once walrelay searches at its slowest pace (the usual order: the
// failover tooling takes longer than the timeout). Then SIGCONT: the old
// primary comes back as the zombie. (The second walrelay is left out of this
// form: its subject does not depend on how the primary failed.)
//
// WALRELAY_FAILOVER_ROUNDS (npm run test:failover) repeats both scenarios
// with fresh servers and prints each time to resume.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { startPrimaryAndStandby, type PgPair } from './harness/pg-pair.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, readStream, type RelayProcess } from './harness/relay.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';

const ROUNDS = Number(process.env.WALRELAY_FAILOVER_ROUNDS ?? 1);

/** Commits one row at a time on `url` until stopped or the server fails; returns the ids it was told were committed. */
function startWriter(url: string, firstId: number) {
  let stopped = false;
  let next = firstId;
  const acknowledged: number[] = [];
  const done = (async () => {
    const client = new pg.Client({ connectionString: url, query_timeout: 3000 }); // a hung server ends the writer too
    client.on('error', () => undefined);
    try {
      await client.connect();
      while (!stopped) {
        const id = next++;
        await client.query('INSERT INTO items VALUES ($1, $2)', [id, `row ${id}`]);
        acknowledged.push(id);
      }
      await client.end().catch(() => undefined);
    } catch {
      // the server died or hangs: the writer ends (end() would wait for a hung server's goodbye)
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    }
  })();
  return { acknowledged, stop: async () => { stopped = true; await done; }, done, get next() { return next; } };
}

for (let round = 1; round <= ROUNDS; round++) for (const hang of [false, true]) {
  describe(`failover: ${hang ? 'the primary hangs' : 'kill -9 of the primary'}, promotion of the standby${ROUNDS > 1 ? ` (round ${round})` : ''}`, () => {
    let pair: PgPair;
    let redis: TestRedis;
    let client: Redis;
    const relays: RelayProcess[] = [];
    let failoverRelay: RelayProcess;
    let httpPort: number;

    before(async () => {
      [pair, redis] = await Promise.all([startPrimaryAndStandby(), startRedis()]);
      client = redis.client();
      httpPort = await freePort();
    });

    after(async () => {
      for (const relay of relays) relay.signal('SIGKILL');
      client?.disconnect();
      await Promise.all([pair?.stop(), redis?.stop()]);
    });

    const hostA = () => `127.0.0.1:${pair.primary.port}`;
    const hostB = () => `127.0.0.1:${pair.standby.port}`;

    it('resumes on the promoted standby: nothing lost, nothing twice, no phantoms, no gap, no re-snapshot', async () => {
      const { primary, standby } = pair;
      await primary.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
      const failoverConfig = writeConfig({
        source: { url: `postgres://postgres@${hostA()},${hostB()}/postgres`, slot: 'relay_fo', publication: 'relay_fo', tables: ['public.items'], timeoutSeconds: 5 },
        sinks: [{ type: 'redis', url: redis.url, stream: 'fo:{schema}.{table}', messageStream: 'fo:messages', exactlyOnce: true, name: 'redis' }],
        http: { port: httpPort },
      });
      // The standby first: setup, status and the relay pass it over.
      const plainConfig = writeConfig({
        source: { url: `postgres://postgres@${hostB()},${hostA()}/postgres`, slot: 'relay_plain', publication: 'relay_plain', tables: ['public.items'], failoverSlot: false, onSlotLost: 'fail' },
        sinks: [{ type: 'redis', url: redis.url, stream: 'plain:{schema}.{table}', messageStream: 'plain:messages' }],
      });
      const setup = await runCli(['setup', '-c', failoverConfig]);
      assert.equal(setup.code, 0, setup.stderr);
      assert.match(setup.stdout, /created replication slot relay_fo \(pgoutput, failover\)/);
      assert.match(setup.stdout, /synchronized_standby_slots: standby1/);
      assert.doesNotMatch(setup.stdout, /warning: synchronized_standby_slots is empty/);
      let plainRelay: RelayProcess | null = null;
      if (!hang) {
        const plainSetup = await runCli(['setup', '-c', plainConfig]);
        assert.equal(plainSetup.code, 0, plainSetup.stderr);
        assert.match(plainSetup.stdout, new RegExp(`using ${hostA()}, the primary`));
        assert.match(plainSetup.stdout, /created replication slot relay_plain \(pgoutput\)/);

        const status = await runCli(['status', '--json', '-c', plainConfig]);
        assert.equal(status.code, 0, status.stderr);
        const plainStatus = JSON.parse(status.stdout);
        assert.equal(plainStatus.host, hostA());
        assert.equal(plainStatus.failover, false);
        assert.equal(plainStatus.synchronizedStandbySlots, 'standby1');
      }
      const failoverStatus = JSON.parse((await runCli(['status', '--json', '-c', failoverConfig])).stdout);
      assert.deepEqual([failoverStatus.host, failoverStatus.failover, failoverStatus.synchronizedStandbySlots], [hostA(), true, 'standby1']);

      failoverRelay = spawnRelay(failoverConfig);
      relays.push(failoverRelay);
      if (!hang) {
        plainRelay = spawnRelay(plainConfig);
        relays.push(plainRelay);
        await plainRelay.waitForLog(/"msg":"streaming"/);
        assert.match(plainRelay.logs(), new RegExp(`"host":"${hostA()}"`));
      }
      await failoverRelay.waitForLog(/"msg":"streaming"/);

      const writer = startWriter(primary.url, 1);
      // The failover slot is usable on the standby once synchronized and no longer temporary; a standby
      // snapshot logged on the primary lets its catalog xmin pass the standby's sooner.
      await waitFor(async () => {
        await primary.query('SELECT pg_log_standby_snapshot()');
        const [slot] = await standby.query(`SELECT synced, temporary FROM pg_replication_slots WHERE slot_name = 'relay_fo'`);
        return slot?.synced === true && slot.temporary === false && (await client.xlen('fo:public.items')) >= 200;
      }, { what: 'relay_fo synchronized to the standby and 200 rows delivered', timeoutMs: 60_000, intervalMs: 200 });

      const failedAt = Date.now();
      if (hang) primary.freeze();
      else await primary.kill9();
      // A hung server may hold the writer's query past its timeout: wait for it at most 5 s.
      await Promise.race([writer.done, new Promise((resolve) => setTimeout(resolve, 5000))]);
      const readiness: string[] = [];
      const watchReady = setInterval(() => {
        fetch(`http://127.0.0.1:${httpPort}/readyz`).then(async (response) => { if (response.status === 503) readiness.push(await response.text()); }, () => undefined);
      }, 100);
      // The hang: promoted only once walrelay noticed the silence and searches at its slowest pace (5 s between
      // rounds), as when the failover tooling takes longer than source.timeoutSeconds (the usual order).
      if (hang) await failoverRelay.waitForLog(/"err":"NO_PRIMARY[^\n]*"retryInMs":5000/, 60_000);
      await standby.promote();
      const promotedAt = Date.now();
      await failoverRelay.waitForLog(/"code":"SOURCE_SWITCHED"/, 30_000);
      const resumeMs = Date.now() - promotedAt;
      clearInterval(watchReady);
      console.log(`# failover (${hang ? 'hung primary, timeoutSeconds 5' : 'kill -9'}): streaming again ${resumeMs} ms after the promotion, ${Date.now() - failedAt} ms after the primary failed (writer committed ${writer.acknowledged.length} rows before)`);
      // The issue's bound is 30 s at most after the promotion (target 10 s); a kill is noticed at once.
      const target = hang ? 30_000 : 10_000;
      assert.ok(resumeMs < target, `resumed ${resumeMs} ms after the promotion; the target is ${target / 1000} s`);
      assert.match(failoverRelay.logs(), new RegExp(`"from":"${hostA()}","to":"${hostB()}"`));
      // With synchronized_standby_slots the standby's timeline forked above walrelay's position: walrelay's own position holds.
      assert.doesNotMatch(failoverRelay.logs(), /TIMELINE_FORKED|OWN_POSITION_UNPROVEN/);
      assert.ok(readiness.some((body) => /replication is not streaming/.test(body)), `/readyz said why while switching: ${readiness.slice(0, 3).join(' | ')}`);
      if (hang) {
        // First the silence, then the search: the standby is passed over, the hung primary not waited for.
        const reasons = [...new Set(readiness.map((body) => (JSON.parse(body).reasons as string[]).join('; ').slice(0, 240)))];
        console.log(`# failover (hung primary): /readyz said: ${reasons.join(' | ')}`);
        assert.ok(readiness.some((body) => /REPLICATION_TIMEOUT: PostgreSQL at [^ ]+ sent nothing for 5 s/.test(body)), '/readyz named the silence');
        assert.ok(readiness.some((body) => new RegExp(`NO_PRIMARY: .*${hostA()}: PostgreSQL at ${hostA()} has not answered yet.*; ${hostB()}: PostgreSQL at ${hostB()} is a standby`).test(body)),
          '/readyz said why no host is used during the search');
      }

      // More rows on the new primary, then everything it has must be in Redis, once.
      const after = startWriter(standby.url, writer.next + 1000);
      await waitFor(() => after.acknowledged.length >= 100, { what: '100 rows on the new primary', timeoutMs: 30_000 });
      await after.stop();
      const rows = (await standby.query<{ id: number }>('SELECT id FROM items ORDER BY id')).map((row) => row.id);
      await waitFor(async () => (await client.xlen('fo:public.items')) >= rows.length, { what: `${rows.length} events in Redis`, timeoutMs: 30_000 });
      const events = await readStream(client, 'fo:public.items');
      const delivered = events.map((event) => Number(event.key?.id));
      assert.deepEqual([...delivered].sort((a, b) => a - b), rows, 'every row of the new primary exactly once, and nothing else');
      assert.equal(new Set(events.map((event) => event.id)).size, events.length, 'no event id twice');
      assert.ok(events.every((event) => event.op === 'insert'), 'no re-snapshot (read events)');
      assert.equal((await readStream(client, 'fo:messages')).filter((event) => event.op === 'gap').length, 0, 'no gap event');
      const lostAcknowledged = writer.acknowledged.filter((id) => !rows.includes(id));
      console.log(`# failover: ${rows.length} rows on the new primary, all delivered once; ${lostAcknowledged.length} row(s) the writer saw committed were not replicated before the crash (asynchronous standby)`);
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      assert.match(metrics, /^walrelay_source_switches_total 1$/m);

      // The slot that was not a failover slot did not survive: onSlotLost: fail, naming the new primary and the fix.
      if (!plainRelay) return;
      assert.equal(await plainRelay.exited, 1, plainRelay.logs());
      assert.match(plainRelay.logs(), new RegExp(`SLOT_MISSING: replication slot relay_plain does not exist on ${hostB()}, the primary walrelay switched to after ${hostA()} failed`));
      assert.match(plainRelay.logs(), /failoverSlot/);
      assert.match(plainRelay.logs(), /onSlotLost: recreate/);
    });

    it('refuses the old primary when it comes back without being demoted (STALE_PRIMARY)', async () => {
      const { primary: zombie, standby: newPrimary } = pair;
      if (hang) zombie.thaw();
      else await zombie.start();
      assert.equal((await zombie.query('SELECT pg_is_in_recovery() AS r'))[0].r, false, 'the zombie says it is a primary');
      await zombie.query(`INSERT INTO items VALUES (-1, 'written on the zombie')`);
      const streamedBefore = (failoverRelay.logs().match(/"msg":"streaming"/g) ?? []).length;
      // Make walrelay connect again: it tries the hosts in order, the zombie first.
      await newPrimary.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'relay_fo' AND active_pid IS NOT NULL`);
      await failoverRelay.waitForLog(new RegExp(`"code":"STALE_PRIMARY","host":"${hostA()}"`), 30_000);
      await waitFor(() => (failoverRelay.logs().match(/"msg":"streaming"/g) ?? []).length > streamedBefore, { what: 'walrelay streaming again', timeoutMs: 30_000 });
      assert.match(failoverRelay.logs(), /STALE_PRIMARY.*timeline 1, older than timeline 2/);
      await newPrimary.query(`INSERT INTO items VALUES (-2, 'written on the new primary')`);
      await waitFor(async () => (await readStream(client, 'fo:public.items')).some((event) => event.key?.id === -2), { what: 'the new primary\'s row', timeoutMs: 30_000 });
      const ids = (await readStream(client, 'fo:public.items')).map((event) => event.key?.id);
      assert.ok(!ids.includes(-1), 'nothing from the zombie');
      const status = JSON.parse((await runCli(['status', '--json', '-c', writeConfig({
        source: { url: `postgres://postgres@${hostA()},${hostB()}/postgres`, slot: 'relay_fo', publication: 'relay_fo', tables: ['public.items'] },
        sinks: [{ type: 'stdout' }],
      })])).stdout);
      assert.equal(status.host, hostB(), 'a fresh process (status) also passes over the zombie: it asks every host for its timeline');
      failoverRelay.signal('SIGTERM');
      assert.equal(await failoverRelay.exited, 0, failoverRelay.logs());
    });
  });
}
