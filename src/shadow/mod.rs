//! Shadow runs and canary rollouts: `scorch shadow` ([`runner`]) scores the same
//! rows with two model versions and compares them ([`compare`], [`metrics`],
//! [`html`]); promotion rules ([`gate`]); the canary split of a production run
//! ([`crate::run::rollout`]).

pub mod compare;
pub mod feed;
pub mod gate;
pub mod html;
pub mod metrics;
pub mod runner;
pub mod sorted;
pub mod stream;
