//! The accept loop, as a stream of connections for tonic's `serve_with_incoming`: at most
//! `max_connections` open at once (further clients wait in the kernel's backlog until one
//! closes), and accept errors such as `EMFILE` back off instead of spinning.
//!
//! tonic's own loop retries a failed `accept` at once and logs it only at trace level: at the
//! descriptor limit, that is a core burnt on `accept` returning `EMFILE` and nothing in the log.
//! Both conditions are logged here at most once per [`LOG_INTERVAL`], and counted.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::ingest::stats::Counters;

/// At most one log line per condition (limit reached, accept failing) per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The first pause after a failed accept; it doubles while accepts keep failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// An accepted connection, holding its place under the connection limit until it is dropped.
#[derive(Debug)]
pub struct Admitted {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
    counters: Arc<Counters>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lets a condition through at most once per [`LOG_INTERVAL`].
struct Throttle(Option<Instant>);

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        let ready = self
            .0
            .is_none_or(|last| now.duration_since(last) >= LOG_INTERVAL);
        if ready {
            self.0 = Some(now);
        }
        ready
    }
}

/// The connections of `listener`, at most `max_connections` open at once.
pub fn admit(
    listener: TcpListener,
    max_connections: usize,
    counters: Arc<Counters>,
) -> impl Stream<Item = Result<Admitted, io::Error>> + Send + 'static {
    let places = Arc::new(Semaphore::new(max_connections.max(1)));
    async_stream::stream! {
        let (mut full_log, mut error_log) = (Throttle(None), Throttle(None));
        let mut backoff = FIRST_BACKOFF;
        loop {
            let place = match Arc::clone(&places).try_acquire_owned() {
                Ok(place) => place,
                Err(_) => {
                    // Not accepting leaves new clients in the listen backlog: they wait, and
                    // are taken as soon as a connection closes.
                    Counters::add(&counters.connection_limit_waits, 1);
                    if full_log.ready() {
                        tracing::warn!(
                            max_connections,
                            "at the connection limit: new connections wait until one closes"
                        );
                    }
                    match Arc::clone(&places).acquire_owned().await {
                        Ok(place) => place,
                        Err(_) => break,
                    }
                }
            };
            match listener.accept().await {
                Ok((stream, _)) => {
                    backoff = FIRST_BACKOFF;
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                    counters.connections_open.fetch_add(1, Ordering::Relaxed);
                    yield Ok(Admitted { stream, _place: place, counters: Arc::clone(&counters) });
                }
                Err(error) => {
                    drop(place);
                    Counters::add(&counters.accept_errors, 1);
                    if error_log.ready() {
                        tracing::warn!(
                            %error, ?backoff,
                            "accepting a connection failed; backing off (at most one line per {LOG_INTERVAL:?})"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
