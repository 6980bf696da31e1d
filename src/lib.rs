//! acgbulk: bulk provisioning of phone numbers into Azure Communications
//! Gateway through its Provisioning API.
//!
//! This crate holds the jobs (import and delete in [`engine`], accounts and
//! RFIs through [`rowjob`], [`export`], [`reconcile`]) and the command
//! line. It re-exports the crates it is built from, so a user of the
//! library (and its tests) sees one tree: the offline core
//! ([`acgbulk_core`]: sheet, validate, phone, plan, record, journal), the
//! client ([`acgbulk_client`]) and the emulator ([`acgbulk_emulator`]).

pub use acgbulk_client as client;
pub use acgbulk_client::acs;
pub use acgbulk_core::{
    csvconf, durable, journal, model, phone, plan, record, sample, sheet, spelling, text, validate,
    xlsx,
};
pub use acgbulk_emulator as emulator;

pub mod accounts;
pub mod engine;
pub mod export;
pub mod guard;
pub mod reconcile;
pub mod rfis;
pub mod rowjob;
pub mod runner;
