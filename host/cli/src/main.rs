//! The lethe command-line program.
fn main() {}
