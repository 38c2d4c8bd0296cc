//! Polling with a deadline, so tests never rely on fixed sleeps.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// First pause between polls; doubles up to [`MAX_INTERVAL`].
const FIRST_INTERVAL: Duration = Duration::from_millis(10);
/// Longest pause between polls, to keep reaction time short.
const MAX_INTERVAL: Duration = Duration::from_millis(200);

/// Calls `probe` until it returns `Some`, or fails with [`Error::Timeout`] after `timeout`.
///
/// `what` names the awaited condition in the error message.
pub fn until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut interval = FIRST_INTERVAL;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                waited: now - start,
            });
        }
        std::thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(MAX_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_first_success() {
        let mut n = 0;
        let got = until("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(got.ok(), Some(3));
    }

    #[test]
    fn times_out() {
        let err = until("never", Duration::from_millis(50), || None::<()>);
        assert!(matches!(err, Err(Error::Timeout { .. })), "{err:?}");
    }
}
