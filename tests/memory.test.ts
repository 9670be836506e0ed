/**
 * Test entry point for the memory store: the conformance suite on `MemoryStore`, plus the
 * memory store's own unit tests.
 *
 * ```sh
 * npx -y deno@2 test -A tests/memory.test.ts
 * npx -y node@24 --test tests/memory.test.ts
 * npx -y bun@1 test ./tests/memory.test.ts
 * ```
 *
 * @module
 */
import { MemoryStore } from '@conveyor/store-memory';
import type { StoreHarness } from './harness.ts';
import { conformanceSuite } from './conformance/mod.ts';
import { behaviourSuite } from './behaviour/mod.ts';
import '../stores/memory/sorted_list_test.ts';
import '../stores/memory/memory_store_test.ts';

const harness: StoreHarness = {
  label: 'memory',
  async open() {
    const store = new MemoryStore();
    await store.connect();
    return store;
  },
};

conformanceSuite(harness);
behaviourSuite(harness);
