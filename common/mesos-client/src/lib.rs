//! A client of the Mesos v1 scheduler HTTP API.
//!
//! [`scheduler::start`] runs the subscription: SUBSCRIBE with the streamed
//! RecordIO response decoded into events, a heartbeat watchdog, following 307
//! redirects to the leading master, reconnection with exponential backoff and
//! jitter, and re-subscription with the framework ID. [`scheduler::Handle`]
//! sends every other call with the `Mesos-Stream-Id` of the live subscription.
//! Which master leads comes in through a `watch` channel, so master detection
//! (HTTP address or ZooKeeper) stays outside this crate.
//!
//! It does not decide anything: what to accept, decline or acknowledge is the
//! scheduler runtime's business. [`calls`] builds the calls as plain values.
//!
//! Modules: [`calls`] (pure call builders), [`scheduler`] (the loop and the
//! handle), [`error`] (errors and the HTTP-status mapping), [`backoff`].

pub mod backoff;
pub mod calls;
pub mod error;
pub mod scheduler;

pub use error::Error;
pub use scheduler::{Config, Credentials, Handle, SchedulerEvent, start};
