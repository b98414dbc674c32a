//! Random weights for a graph's params (seeded), for examples and tests.
