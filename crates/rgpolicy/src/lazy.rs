//! The one lazy cache of a session's control values.
//!
//! Owns nothing but the slot: a value is computed at first use and kept for
//! the session. An error is not cached (the caller answers `421` and ends
//! the session anyway), so a failed read is tried again if asked again.

use rgcore::Failure;

/// A value read at first use, then kept.
#[derive(Debug)]
pub(crate) struct Lazy<T>(Option<T>);

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Lazy(None)
    }
}

impl<T> Lazy<T> {
    /// Not read yet.
    pub(crate) const fn new() -> Self {
        Lazy(None)
    }

    /// The value, from `init` the first time.
    pub(crate) fn get_or_try_init(
        &mut self,
        init: impl FnOnce() -> Result<T, Failure>,
    ) -> Result<&mut T, Failure> {
        let v = match self.0.take() {
            Some(v) => v,
            None => init()?,
        };
        Ok(self.0.insert(v))
    }
}
