//! Job YAML: parsing and `validate()` never panic or hang, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("jobs/fuzz.yaml");
    if let Ok(job) = scorch::spec::parse_yaml::<scorch::spec::job::JobSpec>(path, text) {
        let _ = job.validate();
    }
});
