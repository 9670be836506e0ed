/**
 * @conveyor/store-sqlite-core (work in progress).
 *
 * @module
 */
export {};
