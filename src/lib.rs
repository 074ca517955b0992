//! pubfn: tenants publish Python handlers as HTTP endpoints; each runs in a wasmtime sandbox.
//!
//! Layers, each importing only those below it: [`cli`] → [`config`] → [`http`] → [`auth`] →
//! [`control`] → [`sandbox`] → [`host`] → [`db`].

pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod db;
pub mod host;
pub mod http;
pub mod sandbox;
