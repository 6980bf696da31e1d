//! acgbulk: bulk provisioning of phone numbers into Azure Communications
//! Gateway through its Provisioning API.
//!
//! The modules follow the data's path: [`sheet`] reads number sheets,
//! [`validate`] checks them offline (with [`phone`] for the numbers
//! themselves), and the API resources are the serde types of [`model`].

pub mod accounts;
pub mod acs;
pub mod client;
pub mod csvconf;
pub mod durable;
pub mod emulator;
pub mod engine;
pub mod export;
pub mod journal;
pub mod model;
pub mod phone;
pub mod plan;
pub mod reconcile;
pub mod record;
pub mod rfis;
pub mod rowjob;
pub mod runner;
pub mod sample;
pub mod sheet;
pub mod spelling;
pub mod text;
pub mod validate;
