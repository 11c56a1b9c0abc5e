//! Templates (`{{ ds }}`, `{{ ds_add(n) }}`, `${ENV}` …): syntax check and
//! rendering never panic or hang, and a template that passes the syntax check
//! renders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars = scorch::spec::template::TemplateVars::new(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        &["X".into()],
    );
    let ok = scorch::spec::template::check_syntax(text).is_ok();
    let rendered = scorch::spec::template::render_with(text, &vars, &|_| Some("value".into()));
    if ok {
        assert!(
            rendered.is_ok(),
            "{text:?} passed the syntax check but does not render: {rendered:?}"
        );
    }
});
