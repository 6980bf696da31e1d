//! acgbulk's core: everything that works offline, along the data's path.
//!
//! [`sheet`] reads number sheets (CSV, Excel, ODS) streaming, [`validate`]
//! checks them (with [`phone`] for the numbers themselves), [`plan`] cuts
//! the valid rows into batches, [`record`] gives a number's configuration
//! one comparable form, and [`journal`] keeps a run's durable checkpoint.
//! [`model`] holds the API's resources as JSON; [`spelling`] and [`text`]
//! are the leaves every other module shares. No network here.

pub mod csvconf;
pub mod durable;
pub mod journal;
pub mod model;
pub mod phone;
pub mod plan;
pub mod record;
pub mod sample;
pub mod sheet;
pub mod spelling;
pub mod text;
pub mod validate;
pub mod xlsx;
