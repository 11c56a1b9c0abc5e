//! Data: arbitrary column values through preprocess → contract → report → drift
//! (see data_case.rs) never panic, and every number written reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("data_case.rs");

fuzz_target!(|data: &[u8]| data_case(data));
