//! memstore's benchmarks (`cargo bench` in this folder; see BENCHMARKS.md at the crate root).
//! The code lives in the bench targets; this library is empty.
