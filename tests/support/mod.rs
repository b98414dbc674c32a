//! Helpers shared by the integration tests.

pub mod small_zoo;
