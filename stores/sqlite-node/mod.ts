/**
 * @conveyor/store-sqlite-node (work in progress).
 *
 * @module
 */
export {};
