//! The core of twauth: what users, emails, sessions, key pairs and one-time
//! codes are, the rules they follow, the use cases that change them, and the
//! ports through which those use cases reach storage, mail, time and
//! randomness.
//!
//! This crate depends on no web framework, database driver or mail library.
//! Adapters in other crates implement the traits in [`ports`], and the server
//! binary wires them together. Every use case is synchronous: adapters block
//! on their I/O, so callers on an async runtime run use cases on a blocking
//! thread pool.

pub mod cache;
pub mod delivery;
pub mod error;
pub mod gateway;
pub mod mail;
pub mod memory;
pub mod model;
pub mod policy;
pub mod ports;
pub mod secret;
pub mod service;
pub mod values;

pub use error::{AuthError, Field};
pub use policy::Policy;
pub use service::Auth;
