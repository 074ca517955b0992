//! pubfn: tenants publish Python handlers as HTTP endpoints; each runs in a wasmtime sandbox.
//!
//! Layers, each importing only those below it: [`cli`] → [`config`] → [`http`] → [`app`] →
//! [`auth`] → [`control`] → [`sandbox`] → [`host`] → [`db`], [`egress`], [`packages`]; [`private_fs`] is a leaf any of
//! them uses. `http` and `cli` are adapters: they parse, call a use case of [`app`], and map
//! its error.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod db;
pub mod egress;
pub mod host;
pub mod http;
pub mod packages;
pub mod private_fs;
pub mod sandbox;

/// A boxed error: the cause of a failure, kept as its source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
