/**
 * What a store's test entry point hands to the conformance and behaviour suites.
 *
 * @module
 */
import type { StoreInterface } from '@conveyor/shared';

/** How the suites open stores of one kind. */
export interface StoreHarness {
  /** Shown in test names, e.g. `memory`, `sqlite-node (file)`. */
  label: string;
  /**
   * Opens a fresh, connected store. Tests use unique queue names (see `uniqueQueue`), so stores
   * opened by one harness may share a database.
   */
  open(): Promise<StoreInterface>;
  /**
   * Opens a second store over the same data as `store`, as another process would (a second
   * connection, a second handle on the same file). Undefined for per-instance stores (memory).
   */
  openPeer?(store: StoreInterface): Promise<StoreInterface>;
  /** Runs once after the suites (drop temp files, stop an embedded server). */
  teardown?(): Promise<void>;
}
