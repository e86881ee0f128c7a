//! The network half of egress: resolve once and check every address (`net::resolve`), connect
//! only to those, speak HTTP/1.1 (over TLS for `https`, `net::tls`), buffer the response within
//! limits, scrub it.
//!
//! wasmtime's `default_send_request` connects by name, so it resolves on its own and never
//! shows the addresses to a policy; this module exists so that the addresses checked are the
//! addresses connected to. A connection whose answer was read whole is kept for the
//! component's next request to the same destination ([`super::pool`]).

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderValue, Uri};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::pool::{AbortOnDrop, Connection, PoolBody};
use super::{EgressError, EgressPolicy, Phase, Timeouts};
use crate::net::destination::Destination;
use crate::net::resolve::resolve_checked;
use crate::net::tls;

/// Sends `request` on a kept connection to `destination`, or on a new one to its checked
/// addresses, and returns the buffered, scrubbed response. A connection whose response was read
/// whole goes back to the component's pool.
pub(super) async fn exchange<B>(
    policy: &EgressPolicy,
    destination: &Destination,
    mut request: http::Request<B>,
    timeouts: Timeouts,
) -> Result<http::Response<Bytes>, EgressError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let name = || destination.to_string();
    let timed_out = |phase, after| EgressError::Timeout {
        component: policy.component.clone(),
        destination: name(),
        phase,
        after,
    };
    let http_error = |source| EgressError::Http {
        destination: name(),
        source,
    };

    // The request line carries only the path and query; the authority goes in `Host`.
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| destination.host().to_owned());
    let host = HeaderValue::from_str(&authority).map_err(|_| EgressError::InvalidUri {
        component: policy.component.clone(),
        why: "its host cannot be sent in a Host header",
    })?;
    request.headers_mut().insert(HOST, host);
    *request.uri_mut() = origin_form(request.uri());
    let mut request: http::Request<PoolBody> =
        request.map(|body| body.map_err(Into::into).boxed_unsync());

    if let Some(mut kept) = policy.pool.take(destination) {
        match timeout(timeouts.first_byte, kept.sender.try_send_request(request)).await {
            Ok(Ok(response)) => return finish(policy, destination, kept, response, timeouts).await,
            Ok(Err(mut e)) => match e.take_message() {
                // Never sent (the connection closed meanwhile): a new one.
                Some(unsent) => request = unsent,
                None => return Err(http_error(e.into_error())),
            },
            Err(_) => return Err(timed_out(Phase::FirstByte, timeouts.first_byte)),
        }
    }

    let scope = policy.address_scope(destination);
    let addrs = resolve_checked(&policy.component, destination, scope, timeouts.connect).await?;
    let tcp = timeout(timeouts.connect, TcpStream::connect(&addrs[..]))
        .await
        .map_err(|_| timed_out(Phase::Connect, timeouts.connect))?
        .map_err(|source| EgressError::Connect {
            destination: name(),
            source,
        })?;
    // Nagle only delays small requests; failing to disable it is harmless.
    let _ = tcp.set_nodelay(true);
    let mut connection = if destination.scheme().is_tls() {
        let tls = timeout(timeouts.connect, tls::connect(destination, tcp))
            .await
            .map_err(|_| timed_out(Phase::Connect, timeouts.connect))?
            .map_err(|source| EgressError::Tls {
                destination: name(),
                source,
            })?;
        handshake(policy, destination, tls, timeouts).await?
    } else {
        handshake(policy, destination, tcp, timeouts).await?
    };
    let response = timeout(timeouts.first_byte, connection.sender.send_request(request))
        .await
        .map_err(|_| timed_out(Phase::FirstByte, timeouts.first_byte))?
        .map_err(http_error)?;
    finish(policy, destination, connection, response, timeouts).await
}

/// An HTTP/1.1 connection over `io`, its task running.
async fn handshake<S>(
    policy: &EgressPolicy,
    destination: &Destination,
    io: S,
    timeouts: Timeouts,
) -> Result<Connection, EgressError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = timeout(
        timeouts.connect,
        hyper::client::conn::http1::handshake::<_, PoolBody>(TokioIo::new(io)),
    )
    .await
    .map_err(|_| EgressError::Timeout {
        component: policy.component.clone(),
        destination: destination.to_string(),
        phase: Phase::Connect,
        after: timeouts.connect,
    })?
    .map_err(|source| EgressError::Http {
        destination: destination.to_string(),
        source,
    })?;
    // The task lives as long as the connection is in use or kept; dropping the guard ends it.
    let task = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    Ok(Connection {
        sender,
        _task: task,
    })
}

/// Buffers the response within limits, scrubs it, and keeps the connection for the next request.
async fn finish(
    policy: &EgressPolicy,
    destination: &Destination,
    connection: Connection,
    response: http::Response<hyper::body::Incoming>,
    timeouts: Timeouts,
) -> Result<http::Response<Bytes>, EgressError> {
    let name = || destination.to_string();
    let http_error = |source| EgressError::Http {
        destination: name(),
        source,
    };
    let timed_out = |phase, after| EgressError::Timeout {
        component: policy.component.clone(),
        destination: name(),
        phase,
        after,
    };
    let limit = policy.max_response_bytes;
    let too_large = || EgressError::ResponseTooLarge {
        component: policy.component.clone(),
        destination: name(),
        limit,
    };
    let (mut parts, mut body) = response.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut buffer = BytesMut::new();
    loop {
        let frame = timeout(timeouts.between_bytes, body.frame())
            .await
            .map_err(|_| timed_out(Phase::BetweenBytes, timeouts.between_bytes))?;
        let Some(frame) = frame else { break };
        // Trailers are dropped: the response is handed on whole, with its length in a header.
        if let Ok(data) = frame.map_err(http_error)?.into_data() {
            if buffer.len() + data.len() > limit {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    drop(body);
    policy.pool.put(destination, connection);

    // Decoded before scrubbing: a compressed reflection of a secret would pass unseen.
    let buffer = if policy.has_secret_for(destination) {
        super::decode::decode(&mut parts.headers, buffer.freeze(), limit).map_err(|e| match e {
            super::decode::DecodeError::TooLarge => too_large(),
            super::decode::DecodeError::Unsupported(encoding) => EgressError::UnsupportedEncoding {
                component: policy.component.clone(),
                destination: name(),
                encoding,
            },
            super::decode::DecodeError::Corrupt(coding) => EgressError::UnsupportedEncoding {
                component: policy.component.clone(),
                destination: name(),
                encoding: format!("{coding} (corrupt data)"),
            },
        })?
    } else {
        buffer.freeze()
    };
    let scrubber = policy.scrubber();
    for value in parts.headers.values_mut() {
        if let std::borrow::Cow::Owned(clean) = scrubber.scrub(value.as_bytes()) {
            // `[redacted]` is a valid header value, and so is what surrounded the secret.
            *value = HeaderValue::from_bytes(&clean)
                .unwrap_or_else(|_| HeaderValue::from_static("[redacted]"));
        }
    }
    let body = match scrubber.scrub(&buffer) {
        std::borrow::Cow::Borrowed(_) => buffer,
        std::borrow::Cow::Owned(clean) => Bytes::from(clean),
    };
    // The body is whole now: no transfer coding, and its length is what it is after scrubbing.
    // (An empty body keeps its headers: a HEAD response declares the length it would have.)
    parts.headers.remove(TRANSFER_ENCODING);
    if !body.is_empty() {
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    Ok(http::Response::from_parts(parts, body))
}

/// `path?query` of `uri`, the path never empty: `/` alone, or before a bare `?query`.
fn origin_form(uri: &Uri) -> Uri {
    let path_and_query = uri.path_and_query().map_or("", |pq| pq.as_str());
    let target = if path_and_query.starts_with('/') {
        path_and_query.to_owned()
    } else {
        format!("/{path_and_query}")
    };
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = target.parse().ok();
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_always_starts_with_a_slash() {
        // (request URI, request target sent)
        let cases = [
            ("http://h.example", "/"),
            ("http://h.example/", "/"),
            ("http://h.example?q", "/?q"),
            ("http://h.example?q=1&r", "/?q=1&r"),
            ("http://h.example/a/b?c", "/a/b?c"),
            ("http://h.example/a%2Fb", "/a%2Fb"),
        ];
        // The request target itself, not `Uri`'s `Display` (which puts a `/` before a bare
        // query on its own and so would hide the bug).
        let target_of = |uri: &Uri| {
            origin_form(uri)
                .path_and_query()
                .unwrap()
                .as_str()
                .to_owned()
        };
        for (uri, target) in cases {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(target_of(&uri), target, "{uri}");
        }
        let mut parts = http::uri::Parts::default();
        parts.path_and_query = Some("?only".parse().unwrap());
        let uri = Uri::from_parts(parts).unwrap();
        assert_eq!(target_of(&uri), "/?only");
    }
}
