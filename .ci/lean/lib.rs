//! Empty: this package only builds tests of the main crate (its `[[test]]`s: stress, flood and
//! leaks) with nothing but memsession's own dependencies, so that CI's release and
//! AddressSanitizer builds of them skip the web stacks the main crate's dev-dependencies bring;
//! see `.ci/run`.
