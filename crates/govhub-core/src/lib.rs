//! # govhub-core
//!
//! The domain of govhub: national-standard identifiers, validated names, the catalog
//! and its Frictionless table schemas, authorization, the storage port ([`store::Store`])
//! and the services ([`service::Hub`]) that tie them together. It knows nothing of HTTP
//! or SQL: `cargo tree -p govhub-core` shows no web framework and no database driver.

pub mod audit;
mod audit_service;
pub mod authz;
pub mod calendar;
pub mod cells;
pub mod clock;
pub mod deliver;
pub mod delivery;
pub mod error;
pub mod input;
pub mod licence;
pub mod licence_id;
pub mod licence_service;
pub mod licence_share;
pub mod masking;
pub mod model;
pub mod names;
pub mod records;
pub mod schema;
pub mod seal_svg;
pub mod service;
pub mod share;
pub mod sharing;
pub mod signer;
pub mod standards;
pub mod store;
pub mod webhook;

pub use error::{Code, Error, Result};
