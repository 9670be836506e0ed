/**
 * @conveyor/store-sqlite-deno (work in progress).
 *
 * @module
 */
export {};
