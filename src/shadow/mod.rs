//! Shadow runs and canary rollouts: two model versions scored on the same rows and
//! compared ([`compare`], [`metrics`]), promotion rules ([`gate`]), and the canary
//! split of a production run ([`rollout`]).

pub mod compare;
pub mod gate;
pub mod metrics;
pub mod rollout;
