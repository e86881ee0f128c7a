//! A request body checked for loaded secrets as it streams out.
//!
//! The body of a component's request arrives in pieces and may be large (an upload), so it is
//! not buffered whole: each piece is checked together with the tail of the one before, and the
//! last [`Scrubber::longest`]` - 1` bytes are held back until the next piece (or the end) shows
//! they do not begin a secret. A body that holds one fails at that piece: nothing of the secret
//! is sent, and [`Found`] tells egress why the exchange failed.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::secrets::Scrubber;

/// Set when a [`Screened`] body found a secret (clones share it).
#[derive(Debug, Clone, Default)]
pub(super) struct Found(Arc<AtomicBool>);

impl Found {
    /// Whether a secret was found.
    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a [`Screened`] body fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body holds a secret the host has loaded; it was not sent")]
pub(super) struct SecretInBody;

/// `inner`, checked piece by piece for spellings of secrets.
pub(super) struct Screened<B> {
    inner: B,
    scrubber: Scrubber,
    /// Bytes checked but not yet passed on: they may be the start of a secret.
    held: Vec<u8>,
    /// Trailers, passed on once the held bytes are.
    trailers: Option<Frame<Bytes>>,
    found: Found,
}

impl<B> Screened<B> {
    /// Checks `inner` against `scrubber`; sets `found` if it holds a secret.
    pub(super) fn new(inner: B, scrubber: Scrubber, found: Found) -> Self {
        Screened {
            inner,
            scrubber,
            held: Vec::new(),
            trailers: None,
            found,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> Body for Screened<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.scrubber.is_empty() {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        }
        loop {
            if this.trailers.is_some() || this.found.is_set() {
                return Poll::Ready(this.finish());
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => return Poll::Ready(this.finish()),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let mut piece = std::mem::take(&mut this.held);
                        piece.extend_from_slice(&data);
                        if this.scrubber.finds(&piece) {
                            this.found.0.store(true, Ordering::Relaxed);
                            return Poll::Ready(Some(Err(SecretInBody.into())));
                        }
                        let keep = this.scrubber.longest().saturating_sub(1);
                        this.held = piece.split_off(piece.len().saturating_sub(keep));
                        if !piece.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(piece)))));
                        }
                    }
                    Err(trailers) => this.trailers = Some(trailers),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.trailers.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Bytes are held back, never added or dropped: the total is the inner body's.
        self.inner.size_hint()
    }
}

impl<B> Screened<B> {
    /// The held bytes (already checked), then the trailers, then the end.
    fn finish(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        if self.found.is_set() {
            return Some(Err(SecretInBody.into()));
        }
        if !self.held.is_empty() {
            return Some(Ok(Frame::data(Bytes::from(std::mem::take(&mut self.held)))));
        }
        self.trailers.take().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;
    use http_body_util::{BodyExt, StreamBody};

    const SECRET: &str = "5551234:SCREENED-body-secret_value";

    /// Streams `pieces` through a screen; what was passed on, and whether it failed.
    async fn run(pieces: &[&[u8]]) -> (Vec<u8>, bool, bool) {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = pieces
            .iter()
            .map(|p| Ok(Frame::data(Bytes::copy_from_slice(p))))
            .collect();
        let inner = StreamBody::new(futures::stream::iter(frames));
        let found = Found::default();
        let scrubber = Scrubber::for_values(&[&SecretValue::new(SECRET)]);
        let mut body = Screened::new(inner, scrubber, found.clone());
        let mut sent = Vec::new();
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => sent.extend_from_slice(&frame.into_data().unwrap()),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        (sent, failed, found.is_set())
    }

    #[tokio::test]
    async fn a_secret_in_a_body_is_never_sent_even_across_pieces() {
        let s = SECRET.as_bytes();
        let b64 = b"NTU1MTIzNDpTQ1JFRU5FRC1ib2R5LXNlY3JldF92YWx1ZQ==";
        // (pieces, refused)
        let cases: Vec<(Vec<&[u8]>, bool)> = vec![
            (vec![b"hello ", b"world"], false),
            (vec![b"x=", s], true),
            (vec![b"x=", &s[..5], &s[5..]], true),
            (vec![&s[..11], b"...", &s[11..22]], false),
            (vec![b"a", &s[..6], &s[6..12], b"z"], true),
            (vec![&b64[..10], &b64[10..]], true),
        ];
        for (pieces, refused) in cases {
            let whole: Vec<u8> = pieces.concat();
            let (sent, failed, found) = run(&pieces).await;
            assert_eq!((failed, found), (refused, refused), "{whole:?}");
            if refused {
                // Not even the start of the secret left.
                assert!(!sent.windows(5).any(|w| w == &s[..5]), "{sent:?}");
            } else {
                assert_eq!(sent, whole);
            }
        }
    }
}
