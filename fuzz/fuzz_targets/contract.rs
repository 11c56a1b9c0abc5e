//! Data contract YAML: parsing and `validate()` never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("schemas/fuzz.yaml");
    if let Ok(c) = scorch::spec::parse_yaml::<scorch::contract::Contract>(path, text) {
        let _ = c.validate();
    }
});
