/**
 * @conveyor/store-sqlite-bun (work in progress).
 *
 * @module
 */
export {};
