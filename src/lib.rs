//! pubfn: tenants publish Python handlers as HTTP endpoints; each runs in a wasmtime sandbox.
//!
//! Layers, each importing only those below it: [`cli`] → [`config`] → [`sandbox`] → [`host`].

pub mod cli;
pub mod config;
pub mod host;
pub mod sandbox;
