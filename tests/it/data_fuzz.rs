//! The `data` fuzz target's case (fuzz/fuzz_targets/data_case.rs) on a short
//! budget: random bytes decoded into the example's columns — any f64 bit pattern,
//! any integer, short, empty and non-UTF-8 strings, nulls — through contract,
//! preprocessing, report and drift. `make fuzz` runs the same case for minutes.

include!("../../fuzz/fuzz_targets/data_case.rs");

use proptest::prelude::*;

/// Bytes biased towards the awkward patterns: NaN, ±inf, ±MAX, subnormals, zero
/// lengths, 0xff (null markers and invalid UTF-8).
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just(f64::NAN.to_bits()),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        Just(f64::MAX.to_bits()),
        Just((-f64::MAX).to_bits()),
        Just(1u64),
        Just(0u64),
        Just((-0.0f64).to_bits()),
        Just(u64::MAX),
        Just(i64::MIN as u64),
        any::<u64>(),
        (0.0..100.0f64).prop_map(f64::to_bits),
    ];
    proptest::collection::vec(word, 0..600)
        .prop_map(|w| w.into_iter().flat_map(u64::to_le_bytes).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn any_column_values_go_through_every_stage(data in bytes()) {
        data_case(&data);
    }
}

#[test]
fn fixed_cases_of_every_kind() {
    data_case(&[]);
    data_case(&[0xff; 4000]);
    let inf: Vec<u8> = std::iter::repeat_n(f64::INFINITY.to_bits().to_le_bytes(), 500)
        .flatten()
        .collect();
    data_case(&inf);
}
