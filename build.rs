//! Placeholder build script (the ingest issue compiles `proto/` here).
fn main() {}
