//! Running jobs over time: backfills of date ranges ([`backfill`]).

pub mod backfill;
