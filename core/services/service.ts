/**
 * The shape of a maintenance service, and a periodic runner for the simple ones.
 *
 * @module
 */

/**
 * A small background service that a worker starts and stops.
 *
 * @example
 * ```ts
 * import type { Service } from '@conveyor/core';
 * const noop: Service = { start() {}, stop: () => Promise.resolve() };
 * ```
 */
export interface Service {
  /** Starts the service (idempotent). */
  start(): void;
  /** Stops it and waits for a running step to end. */
  stop(): Promise<void>;
}

/**
 * Runs `tick` at start and then every `interval` ms, never two at once. Errors go to
 * `onError`.
 *
 * @example
 * ```ts
 * import { PeriodicService } from '@conveyor/core';
 * const s = new PeriodicService(1000, async () => {}, console.error);
 * s.start();
 * await s.stop();
 * ```
 */
export class PeriodicService implements Service {
  readonly #interval: number;
  readonly #tick: () => Promise<unknown>;
  readonly #onError: (error: unknown) => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;

  /**
   * @param interval ms between runs.
   * @param tick The step.
   * @param onError Receives a failed step's error.
   */
  constructor(interval: number, tick: () => Promise<unknown>, onError: (error: unknown) => void) {
    this.#interval = interval;
    this.#tick = tick;
    this.#onError = onError;
  }

  /**
   * Starts the runs.
   *
   * @example
   * ```ts
   * import { PeriodicService } from '@conveyor/core';
   * new PeriodicService(1000, async () => {}, console.error).start();
   * ```
   */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.runOnce(), this.#interval);
    this.runOnce();
  }

  /**
   * Runs one step now unless one is running.
   *
   * @example
   * ```ts
   * import { PeriodicService } from '@conveyor/core';
   * await new PeriodicService(1000, async () => {}, console.error).runOnce();
   * ```
   */
  runOnce(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = this.#tick().then(
      () => {},
      (e) => this.#onError(e),
    ).finally(() => (this.#running = undefined));
    return this.#running;
  }

  /**
   * Stops the runs and waits for the current one.
   *
   * @example
   * ```ts
   * import { PeriodicService } from '@conveyor/core';
   * await new PeriodicService(1000, async () => {}, console.error).stop();
   * ```
   */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
