//! The send pipeline: every request, a component's or the host's on its behalf, runs the
//! numbered checks of [`egress`](super) in order, under the component's in-flight limit and
//! total deadline, and its refusals are logged, and raised as alerts, within the component's
//! budget.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use wasmtime_wasi_http::RequestOptions;

use super::{EgressError, EgressPolicy, MAX_LOGGED_REFUSALS, Phase, connector, screen};
use crate::alert::Kind;
use crate::warn_budget::{self, Admit};

/// Sends a request on a component's behalf, under that component's policy, with its default
/// timeouts (the tests' way in; the host's own requests go through [`send_buffered_with`]).
///
/// The same checks, injection, limits and scrubbing apply as for the component's own requests.
#[cfg(test)]
pub(crate) async fn send_buffered(
    policy: &EgressPolicy,
    request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, EgressError> {
    execute(policy, request.map(Full::new), None).await
}

/// Sends a request the host makes on a component's behalf, under that component's policy, with
/// the caller's timeouts (clamped like a component's): a long poll asks for a first-byte
/// timeout longer than its poll.
///
/// The same checks, injection, limits and scrubbing apply as for the component's own requests.
pub(crate) async fn send_buffered_with(
    policy: &EgressPolicy,
    request: http::Request<Bytes>,
    options: RequestOptions,
) -> Result<http::Response<Bytes>, EgressError> {
    execute(policy, request.map(Full::new), Some(options)).await
}

/// The whole egress path; logs refusals.
pub(super) async fn execute<B>(
    policy: &EgressPolicy,
    request: http::Request<B>,
    options: Option<RequestOptions>,
) -> Result<http::Response<Bytes>, EgressError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let result = execute_unlogged(policy, request, options).await;
    if let Err(err) = &result {
        if err.is_denial() {
            match warn_budget::admit(&policy.refusals_logged, MAX_LOGGED_REFUSALS) {
                Admit::Log => {
                    tracing::warn!(
                        component = %policy.component,
                        destination = err.destination().unwrap_or("-"),
                        "egress refused: {err}"
                    );
                    // Within the same budget, so a loop of refusals raises a bounded few.
                    policy
                        .alerts
                        .raise(Kind::CapabilityDenied, err.alert_text(&policy.component));
                }
                Admit::Fold => tracing::warn!(
                    component = %policy.component,
                    "egress refused {MAX_LOGGED_REFUSALS} requests; further refusals are not logged"
                ),
                Admit::Quiet => {}
            }
        } else {
            tracing::debug!(
                component = %policy.component,
                destination = err.destination().unwrap_or("-"),
                "egress failed: {err}"
            );
        }
    }
    result
}

async fn execute_unlogged<B>(
    policy: &EgressPolicy,
    mut request: http::Request<B>,
    options: Option<RequestOptions>,
) -> Result<http::Response<Bytes>, EgressError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let destination = policy.check(request.uri())?.clone();
    let timeouts = policy.clamp(options);
    policy.drop_host_set_headers(&mut request);
    let scrubber = policy.scrubber();
    policy.check_no_secret(&destination, &request, &scrubber)?;
    policy.control_transfer(&destination, &mut request);
    let found = screen::Found::default();
    let request = request.map(|body| screen::Screened::new(body, scrubber, found.clone()));

    // Held until the response is buffered and scrubbed: the slot stands for that buffer.
    let waiting = Instant::now();
    let Some(_slot) = policy.in_flight.acquire(timeouts.connect).await else {
        return Err(EgressError::ConnectionLimitReached {
            component: policy.component.clone(),
            destination: destination.to_string(),
            limit: policy.in_flight.limit(),
            waited: waiting.elapsed(),
        });
    };

    let deadline = policy.exchange_deadline();
    let mut request = request;
    let exchange = async {
        // Put in the request only; it leaves on a connection to checked addresses alone.
        policy.inject(&destination, &mut request)?;
        connector::exchange(policy, &destination, request, timeouts).await
    };
    let result = tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| EgressError::Timeout {
            component: policy.component.clone(),
            destination: destination.to_string(),
            phase: Phase::Exchange,
            after: deadline,
        })?;
    // A body that held a secret was cut off before it; whatever the exchange made of that,
    // the reason is the secret.
    if found.is_set() {
        return Err(EgressError::SecretInRequest {
            component: policy.component.clone(),
            destination: destination.to_string(),
            place: "its body",
        });
    }
    result
}
