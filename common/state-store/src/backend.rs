//! The storage trait: one opaque document, read whole and replaced whole.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::Result;

/// A boxed, sendable future, so that [`Backend`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Keeps one document of bytes; knows nothing of its format.
///
/// Contract, which [`crate::StateStore`] relies on:
///
/// * `load` returns `None` only when nothing was ever stored there; an empty document is
///   `Some` of no bytes, never `None`.
/// * `load` and `save` never modify what they could not read: a save replaces the document
///   wholly or not at all, so a crash leaves the previous or the new document.
/// * A backend may refuse a save that is not preceded by a successful load (it needs to know
///   what it is replacing, e.g. to detect a concurrent writer).
pub trait Backend: Send + Sync + fmt::Debug {
    /// Where the document lives, for messages: a file path or a `zk://` address of a znode.
    fn location(&self) -> String;

    /// Reads the whole document; `None` when none was ever stored.
    fn load(&self) -> BoxFuture<'_, Result<Option<Bytes>>>;

    /// Replaces the whole document atomically.
    fn save(&self, document: Bytes) -> BoxFuture<'_, Result<()>>;
}
