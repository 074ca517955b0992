//! Authentication: tenants' JWTs for the data plane and tenant admins, and the operator key.

pub mod jwt;

pub use jwt::{AuthError, Claims, TokenRequest};
