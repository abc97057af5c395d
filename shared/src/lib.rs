//! Plumbing shared by the examples of this workspace.
//!
//! Nothing here is the concurrency being taught: each example keeps its threads, tasks, channels
//! and locks in its own file so a reader can copy it. This crate only provides what every example
//! needs around that: a local HTTP server to download from, seeded sample data, timing and report
//! helpers, progress-bar styles, Ctrl-C handling, a small CPU/RSS sampler, and the downloaders'
//! URL list and output names.
//!
//! Cargo features keep dependency trees small: `async` (Ctrl-C → `CancellationToken`), `http`
//! (the local test server, implies `async` and `urls`), `urls` (the downloaders'
//! URL-list parser and output-name rule) and `images` (sample images and the thumbnail job).

pub mod cli;
pub mod corpus;
pub mod exercise;
pub mod monitor;
pub mod progress;
pub mod python;
pub mod report;
pub mod shutdown;
pub mod sibling;
pub mod work;

#[cfg(feature = "images")]
pub mod batch;
#[cfg(feature = "images")]
pub mod images;
#[cfg(feature = "http")]
pub mod server;
#[cfg(feature = "images")]
pub mod thumbnail;
#[cfg(feature = "urls")]
pub mod urls;
