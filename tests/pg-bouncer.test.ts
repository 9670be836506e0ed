/**
 * Test entry point for the PostgreSQL store behind PgBouncer in transaction pooling mode: the
 * conformance and behaviour suites on `PgStore`s in poll-only mode (`listen: false`, events read
 * from the events table every 20 ms), which by default prepares no statement (PgBouncer before
 * 1.21 passes a statement prepared on one server connection to another), the setting the
 * store's README gives for such a pooler. The server is `CONVEYOR_PG_URL` when set,
 * otherwise a throwaway embedded PostgreSQL.
 *
 * Needs the `pgbouncer` program (Debian: `apt-get install pgbouncer`). Without it the file
 * reports one skipped case saying so, unless `CONVEYOR_REQUIRE_PGBOUNCER` is set (CI sets it):
 * then it fails.
 *
 * `deno task test` runs it on Node only (see `tests/run.ts`); it passes on Deno and Bun too:
 *
 * ```sh
 * npx -y node@24 --test tests/pg-bouncer.test.ts
 * npx -y deno@2 test -A tests/pg-bouncer.test.ts
 * npx -y bun@1 test ./tests/pg-bouncer.test.ts
 * ```
 *
 * @module
 */
import { after, test } from 'node:test';
import process from 'node:process';
import { conformanceSuite } from './conformance/mod.ts';
import { behaviourSuite } from './behaviour/mod.ts';
import { pgbouncerVersion, startPgBouncer } from './pg-bouncer.ts';
import { pgHarness } from './pg-harness.ts';
import { testServer } from './pg-server.ts';

const version = await pgbouncerVersion();
if (version === null) {
  const why = 'pgbouncer is not installed here (Debian: apt-get install pgbouncer)';
  if (process.env.CONVEYOR_REQUIRE_PGBOUNCER) throw new Error(`${why}, and CI requires it`);
  test('PostgreSQL behind PgBouncer', { skip: why }, () => {});
} else {
  const server = await testServer();
  // A PgBouncer that does not start must not leave an embedded server running (and the file
  // waiting on it): the error comes with the server stopped.
  const bouncer = await startPgBouncer(server.url).catch(async (e) => {
    await server.stop();
    throw e;
  });
  const harness = pgHarness(
    `pg via ${version}`,
    bouncer.url,
    // prepare: false is poll-only mode's default.
    { listen: false, pollInterval: 20 },
    async () => {
      await bouncer.stop();
      await server.stop();
    },
    server.url,
  );
  // Before the suites' checks that some case ran: node:test stops at the first failing `after`.
  after(async () => await harness.teardown?.());
  conformanceSuite(harness);
  behaviourSuite(harness);
}
