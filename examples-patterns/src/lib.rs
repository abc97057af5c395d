//! Plumbing shared by the examples-patterns binaries' harnesses (not a lesson: every lesson is
//! in its binary, `src/bin/*.rs`, and stands alone).

pub mod python_peer;
