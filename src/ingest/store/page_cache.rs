//! Handing written pages of a file back to the kernel (`posix_fadvise(POSIX_FADV_DONTNEED)`),
//! on Linux; elsewhere nothing is done. Advice only: it never changes what the file holds, and a
//! failure is logged and otherwise ignored.

use std::fs::File;

/// The page size, for rounding: the kernel drops whole pages only.
pub fn page_size() -> u64 {
    #[cfg(target_os = "linux")]
    {
        rustix::param::page_size() as u64
    }
    #[cfg(not(target_os = "linux"))]
    {
        4096
    }
}

/// Drops the clean cached pages of `file` from byte `from` on, `len` bytes or (`None`) to the
/// end. Dirty pages are not dropped (write them with `fdatasync` first).
pub fn release(file: &File, from: u64, len: Option<u64>) {
    #[cfg(target_os = "linux")]
    {
        let len = len.and_then(std::num::NonZeroU64::new);
        if let Err(error) = rustix::fs::fadvise(file, from, len, rustix::fs::Advice::DontNeed) {
            tracing::debug!(%error, "posix_fadvise(DONTNEED) failed; pages stay cached");
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, from, len);
    }
}
