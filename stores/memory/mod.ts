/**
 * @conveyor/store-memory (work in progress).
 *
 * @module
 */
export {};
