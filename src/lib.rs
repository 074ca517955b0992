//! pubfn: tenants publish Python handlers as HTTP endpoints; each runs in a wasmtime sandbox.
//!
//! Layers, each importing only those below it: [`cli`] → [`config`] → [`http`] → [`auth`] →
//! [`control`] → [`sandbox`] → [`host`] → [`db`]; [`private_fs`] is a leaf any of them uses.

pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod db;
pub mod host;
pub mod http;
pub mod private_fs;
pub mod sandbox;
