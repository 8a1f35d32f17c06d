//! Empty: this package only builds `tests/stress.rs` (its `[[test]]`) under AddressSanitizer
//! with nothing but memsession's own dependencies; see the ASan step of `.ci/run`.
