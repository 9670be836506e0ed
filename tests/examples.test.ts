/**
 * Runs every example in `docs/examples/` and checks what it prints, so the README and API docs
 * cannot drift from the code.
 *
 * ```sh
 * npx -y deno@2 test -A tests/examples.test.ts
 * npx -y node@24 --test tests/examples.test.ts
 * npx -y bun@1 test ./tests/examples.test.ts
 * ```
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requireTests } from './helpers.ts';
import * as flows from '../docs/examples/flows.ts';
import * as limits from '../docs/examples/limits.ts';
import * as quickstart from '../docs/examples/quickstart.ts';
import * as retries from '../docs/examples/retries.ts';
import * as scheduling from '../docs/examples/scheduling.ts';

const { ran } = requireTests('examples');

async function output(
  example: { main(log: (line: string) => void): Promise<void> },
): Promise<string[]> {
  const lines: string[] = [];
  await example.main((line) => lines.push(line));
  return lines;
}

describe('docs/examples', () => {
  it('quickstart', async () => {
    const lines = await output(quickstart);
    assert.deepEqual(lines.sort(), [
      'completed welcome: sent to ada@example.com',
      'result: sent to ada@example.com',
    ]);
    ran();
  });

  it('retries', async () => {
    const lines = await output(retries);
    assert.ok(lines.includes('flaky attempt 1 failed: gateway busy (attempt 1)'));
    assert.ok(lines.includes('flaky attempt 2 failed: gateway busy (attempt 2)'));
    assert.ok(lines.includes('flaky: charged'));
    assert.ok(lines.some((l) => /^slow: job \S+ timed out after 50 ms$/.test(l)), lines.join('\n'));
    assert.ok(lines.includes('custom: declined'));
    assert.equal(lines.filter((l) => l.startsWith('custom attempt')).length, 3);
    ran();
  });

  it('scheduling', async () => {
    const lines = await output(scheduling);
    assert.deepEqual(lines, [
      'reminder is delayed, due in 10 min',
      'schedulers: nightly (1 runs), tick (3 runs)',
    ]);
    ran();
  });

  it('flows', async () => {
    const lines = await output(flows);
    assert.deepEqual(lines, [
      'parent is waiting-children with 2 children',
      'parent now waits for 3 children',
      'order 42: charged 30 and packed in a small box (reserved box) and reserved tea',
    ]);
    ran();
  });

  it('limits', async () => {
    const lines = await output(limits);
    assert.deepEqual(lines, [
      'order: big small big small big big big big',
      'batch sizes: 5, 2',
    ]);
    ran();
  });
});
