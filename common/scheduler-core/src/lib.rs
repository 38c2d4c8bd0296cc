//! Pure scheduling decisions for the data-service frameworks.
//!
//! Everything here is a deterministic function of its inputs — state, offers,
//! the current time passed in as a value — and returns decisions as data:
//! operations per offer, declines with reasons, state changes. No I/O, no
//! clock, no async runtime; the scheduler runtime persists the decisions and
//! sends the calls.
//!
//! Modules: [`resources`] (fixed-point scalars, port ranges, reading offers),
//! [`constraints`] (placement rules on hostname and attributes), [`node`]
//! (a node's spec, placement, task and derived lifecycle stage), [`offer`]
//! (offer evaluation into RESERVE/CREATE/LAUNCH and DESTROY/UNRESERVE),
//! [`planner`] (offers + nodes + time → accepts, declines, kills), [`plan`]
//! (deploy, rolling restart/update and replace plans advanced step by step).

pub mod constraints;
pub mod node;
pub mod offer;
pub mod plan;
pub mod planner;
pub mod resources;
