//! Pica, the booking engine of a coworking space that is also a library and a café.
//!
//! The engine (zone actors, unit of work, notifier) lives in the `pica-actors` crate;
//! this crate is the service around it: configuration, the HTTP edge, authentication
//! and sqlx storage, and the web app members book from (`web`).

pub mod admin;
pub mod app;
pub mod auth;
pub mod calendar;
pub mod config;
pub mod http;
pub mod lifecycle;
pub mod mail;
pub mod medimatch;
pub mod series;
pub mod starting;
pub mod storage;
pub mod web;

pub use app::Application;
pub use config::Settings;
pub use http::AppState;
