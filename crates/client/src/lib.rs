//! The client side of the Provisioning API, in the Azure SDK's shape: a
//! paced, retrying [`Transport`] per run, and over it the
//! [`ProvisioningClient`], one method per operation, with one
//! [`Pager`] over `nextLink`, one path encoder ([`path`]) and one
//! classification of failures ([`ServiceError`]). [`auth`] gets the
//! tokens: Entra ID client secrets, certificate assertions signed here,
//! managed identity, or a given token. [`pacer`] paces every request
//! within its endpoint's [`budget`], which every acgbulk process on the
//! machine shares.
//!
//! Azure Communication Services has its own client over the same
//! transport: [`crate::acs::AcsClient`].

pub mod acs;
pub mod auth;
pub mod budget;
pub mod error;
pub mod pacer;
pub mod pager;
pub mod path;
pub mod provisioning;
pub mod transport;

// The core modules this crate builds on, under the names the code uses.
use acgbulk_core::{model, sheet};

pub use error::{Refusal, ServiceError};
pub use pager::{Page, Pager};
pub use provisioning::{
    paths, ListOptions, Precondition, PreflightError, ProvisioningClient, Response, WriteOptions,
};
pub use transport::{
    retry_after, ApiRequest, ApiResponse, ClientError, Connection, Counters, Liveness,
    RequestSigner, RetryPolicy, Transport,
};
