//! Shadow runs: two model versions scored on the same rows and compared. This part
//! holds the comparison statistics ([`metrics`]); the `scorch shadow` command comes
//! next.

pub mod metrics;
