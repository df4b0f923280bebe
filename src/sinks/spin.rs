//! The lock of a sink's shared state: a test-and-test-and-set spin lock whose release is a plain
//! store.
//!
//! `std::sync::Mutex` releases with an atomic exchange, because it must learn whether a thread
//! sleeps on the futex; on x86 that is a full barrier on every release, and in profiles of the
//! sink's benchmark the release was a large share of a producer's time. The sink's critical
//! sections are short and run no user code, so a waiter here spins briefly and then yields its thread to the OS
//! scheduler instead of sleeping, and nobody needs waking on release. A guard released by a
//! panic unlocks as usual (no poisoning: nothing in the sink panics while holding it).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A value behind a spin lock.
pub(super) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time.
unsafe impl<T: Send> Send for SpinLock<T> {}
// SAFETY: as above; `&SpinLock` only gives `&mut T` through a guard held by one thread.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// Access to the value while the lock is held; dropping it releases the lock.
pub(super) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    pub(super) fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, spinning (then yielding the thread) while another thread holds it.
    #[inline]
    pub(super) fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    /// The slow path: wait for a release without writing the line, then race for it.
    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::SpinLock;

    #[test]
    fn threads_that_increment_under_the_lock_lose_no_update() {
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        // A read and a write apart, so that a second holder would lose updates.
                        let mut guard = lock.lock();
                        let value = *guard;
                        std::hint::black_box(&value);
                        *guard = value + 1;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
    }

    #[test]
    fn a_guard_dropped_by_a_panic_releases_the_lock() {
        let lock = SpinLock::new(1u8);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = lock.lock();
            panic!("while holding the lock");
        }));
        assert!(result.is_err());
        assert_eq!(*lock.lock(), 1, "the lock is free again");
    }
}
