//! Tenants' Python packages: their own modules and pure-Python wheels, checked as hostile
//! input, collected into immutable package sets named by a hash, and laid out on disk for the
//! sandbox to preopen read-only. A leaf: it knows nothing of PostgreSQL, HTTP or wasm.
//!
//! - [`wheel`]: reading and checking one uploaded `.whl`.
//! - [`names`]: what a module may be called (and which names are taken by the runtime).
//! - [`manifest`]: a package set: what is in it, its hash, its quota.
//! - [`install`]: a package set unpacked into a directory.

pub mod install;
pub mod manifest;
pub mod names;
pub mod wheel;

pub use manifest::{ModuleInfo, PackageManifest, WheelInfo};
pub use names::ReservedNames;

/// Why a package change was refused: always the tenant's input, so always a 400 naming it.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The wheel is not one pubfn can install.
    #[error("wheel {filename}: {source}")]
    Wheel {
        /// The wheel's file name.
        filename: String,
        /// What is wrong with it.
        #[source]
        source: wheel::WheelError,
    },
    /// A module or preload name is not usable.
    #[error("{0}")]
    Name(String),
    /// The set would be larger than the tenant may have.
    #[error(
        "the packages would take {needed} bytes unpacked; the tenant's quota is {quota} bytes \
         (max_package_bytes)"
    )]
    Quota {
        /// Bytes the new set would take.
        needed: u64,
        /// Bytes allowed.
        quota: u64,
    },
}
