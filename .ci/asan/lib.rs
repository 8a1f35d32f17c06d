//! Empty: this package only builds `tests/stress.rs` (its `[[test]]`) under AddressSanitizer
//! with nothing but memstore's own dependencies; see the ASan step of `.ci/run`.
