/**
 * Small test helpers shared by every suite. Waiting is always on a condition with a timeout.
 *
 * @module
 */
import { after } from 'node:test';

/** A queue name no other test uses. */
export function uniqueQueue(prefix = 'q'): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Polls `check` until it returns a truthy value and returns it; throws after `timeout` ms.
 * For conditions that no event announces (a lock expiring, another process's write).
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  { timeout = 5000, interval = 5, message = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${String(last)})`);
}

/**
 * Resolves when `subscribe` delivers a value that `match` accepts; rejects after `timeout` ms.
 * `subscribe` registers a listener and returns a function that removes it.
 */
export function waitFor<T>(
  subscribe: (listener: (value: T) => void) => () => void,
  match: (value: T) => boolean = () => true,
  { timeout = 5000, message = 'event' } = {},
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeout} ms waiting for ${message}`));
    }, timeout);
    const off = subscribe((value) => {
      if (!match(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/**
 * Counts the tests of an entry point that ran, and fails the run in an `after` hook if none
 * did: a store suite that silently runs nothing must not look green. Call `ran()` at the end of
 * each test body (the suites do it through `track`). Call this after registering the entry
 * point's own `after` hooks: `after` hooks run in the order they were registered, and Node stops
 * at the first that throws, so a cleanup registered later would not run and the process would
 * wait on its open connections instead of failing.
 */
export function requireTests(label: string): { ran: () => void } {
  let count = 0;
  after(() => {
    if (count === 0) throw new Error(`${label}: no test ran`);
  });
  return { ran: () => void count++ };
}
