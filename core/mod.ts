/**
 * @conveyor/core (work in progress).
 *
 * @module
 */
export {};
