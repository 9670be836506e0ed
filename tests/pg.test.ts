/**
 * Test entry point for the PostgreSQL store: the conformance and behaviour suites on `PgStore`, with a second
 * `PgStore` on the same schema as the "other process" peer. Uses `CONVEYOR_PG_URL` when set,
 * otherwise starts a throwaway embedded PostgreSQL (tests/pg-server.ts).
 *
 * ```sh
 * npx -y deno@2 test -A tests/pg.test.ts
 * npx -y node@24 --test tests/pg.test.ts
 * npx -y bun@1 test ./tests/pg.test.ts
 * ```
 *
 * @module
 */
import { after } from 'node:test';
import { conformanceSuite } from './conformance/mod.ts';
import { behaviourSuite } from './behaviour/mod.ts';
import { pgHarness } from './pg-harness.ts';
import { testServer } from './pg-server.ts';

const server = await testServer();
const harness = pgHarness('pg', server.url, {}, server.stop);

// Before the suites' checks that some case ran: node:test stops at the first failing `after`.
after(async () => await harness.teardown?.());
conformanceSuite(harness);
behaviourSuite(harness);
