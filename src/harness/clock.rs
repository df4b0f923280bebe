//! The test's relative clock (docs/harness.md §2.2 step 4): every history time is nanoseconds since
//! it started. It reads tokio's clock, so a paused runtime makes it virtual.

use tokio::time::Instant;

use crate::harness::history::Nanos;

/// Nanoseconds since the main phase's setup began.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the start.
    pub fn now(&self) -> Nanos {
        self.start.elapsed().as_nanos() as Nanos
    }

    /// The instant `nanos` after the start.
    pub fn instant(&self, nanos: Nanos) -> Instant {
        self.start + std::time::Duration::from_nanos(nanos)
    }
}
