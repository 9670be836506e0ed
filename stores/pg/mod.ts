/**
 * @conveyor/store-pg (work in progress).
 *
 * @module
 */
export {};
