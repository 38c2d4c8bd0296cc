//! Mesos v1 protocol types and their two wire forms.
//!
//! The types are generated at build time from our own `.proto` subset under
//! `proto/` (field names, numbers and labels as in Mesos 1.11). Every message
//! implements [`prost::Message`] for `application/x-protobuf` and
//! [`prost_reflect::ReflectMessage`], which [`codec`] uses to speak Mesos'
//! `application/json` form (proto field names, enums by name, bytes as base64,
//! 64-bit numbers as JSON numbers).
//!
//! This crate holds no logic beyond encoding: no I/O, no validation of Mesos
//! semantics, only the protobuf rule that required fields must be present.
//!
//! Modules: [`v1`] (with [`v1::scheduler`] and [`v1::executor`]), [`codec`].

use std::sync::LazyLock;

use prost_reflect::DescriptorPool;

pub mod codec;

pub use codec::{ContentType, DecodeError, decode, encode};

/// The `mesos.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

    /// The `mesos.v1.scheduler` package: scheduler calls and events.
    pub mod scheduler {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
    }

    /// The `mesos.v1.executor` package: executor calls and events.
    pub mod executor {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
    }
}

/// Descriptors of every message in our subset, compiled into the binary.
pub static DESCRIPTOR_POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    // The bytes were produced by our own build script from our own .proto
    // files, so a failure here is a build defect, not bad input.
    DescriptorPool::decode(
        include_bytes!(concat!(env!("OUT_DIR"), "/mesos_v1_descriptor.bin")).as_ref(),
    )
    .expect("descriptor set produced by build.rs is valid")
});
