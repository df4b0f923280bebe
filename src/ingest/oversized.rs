//! A tower layer that answers a request message over the server's
//! `max_decoding_message_size` with `RESOURCE_EXHAUSTED`, as gRPC specifies, on every service.
//!
//! tonic's codec reports such a message as `OUT_OF_RANGE`. The status reaches the client in one
//! of two places: the headers of a trailers-only response (a unary call such as a health check,
//! rejected before any answer) or the trailers after a stream's answers (the ingest stream).
//! The layer rewrites that one status in both places, and leaves every other
//! status as it is; the message (found and limit sizes) is kept.
//!
//! tonic-reflection is the exception it cannot fix: its handler drops a request it cannot
//! decode and ends its stream without an error, so no status is there to rewrite.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::codegen::Service;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::{Code, Status};

/// What tonic's decoder says about an oversized message (`codec/decode.rs`).
const DECODED_TOO_LARGE: &str = "decoded message length too large";

/// `Code::OutOfRange` as the value of a `grpc-status` header.
const OUT_OF_RANGE: &str = "11";

/// The layer, for `tonic::transport::Server::layer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OversizedLayer;

impl<S> tower_layer::Layer<S> for OversizedLayer {
    type Service = Oversized<S>;

    fn layer(&self, inner: S) -> Oversized<S> {
        Oversized { inner }
    }
}

/// The service [`OversizedLayer`] wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct Oversized<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for Oversized<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
{
    type Response = Response<RewrittenBody<ResponseBody>>;
    type Error = S::Error;
    type Future = futures::future::MapOk<
        S::Future,
        fn(Response<ResponseBody>) -> Response<RewrittenBody<ResponseBody>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        use futures::TryFutureExt;
        self.inner.call(request).map_ok(rewrite_response)
    }
}

fn rewrite_response<B>(response: Response<B>) -> Response<RewrittenBody<B>> {
    let (mut parts, inner) = response.into_parts();
    rewrite(&mut parts.headers);
    Response::from_parts(parts, RewrittenBody { inner })
}

/// Rewrites the status in `headers` (response headers or trailers), if it is tonic's answer to
/// an oversized message.
fn rewrite(headers: &mut HeaderMap) {
    // Every call's trailers carry a status; parsing one copies the header map, so look first.
    if headers
        .get("grpc-status")
        .is_none_or(|code| code.as_bytes() != OUT_OF_RANGE.as_bytes())
    {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if status.code() != Code::OutOfRange || !status.message().contains(DECODED_TOO_LARGE) {
        return;
    }
    if let Err(error) = Status::resource_exhausted(status.message()).add_header(headers) {
        tracing::debug!(%error, "could not rewrite an oversized-message status");
    }
}

fn rewrite_trailers<T>(mut frame: Frame<T>) -> Frame<T> {
    if let Some(trailers) = frame.trailers_mut() {
        rewrite(trailers);
    }
    frame
}

pin_project! {
    /// A response body whose trailers go through [`rewrite`].
    pub struct RewrittenBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B: Body> Body for RewrittenBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = self.project().inner.poll_frame(cx);
        polled.map(|frame| frame.map(|frame| frame.map(rewrite_trailers)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(status: &Status) -> HeaderMap {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        headers
    }

    #[test]
    fn only_an_oversized_decode_becomes_resource_exhausted() {
        assert_eq!(Code::from_bytes(OUT_OF_RANGE.as_bytes()), Code::OutOfRange);
        let oversized = Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        );
        let mut headers = headers_of(&oversized);
        rewrite(&mut headers);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), oversized.message());
        for untouched in [
            Status::out_of_range("index out of range"),
            Status::ok(""),
            Status::not_found("decoded message length too large"),
        ] {
            let mut headers = headers_of(&untouched);
            rewrite(&mut headers);
            assert_eq!(headers, headers_of(&untouched), "{untouched:?}");
        }
    }
}
