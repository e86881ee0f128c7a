//! The `wasi:http` side: a component's outgoing requests enter egress here, through wasmtime's
//! [`WasiHttpHooks`], with the headers that carry secrets forbidden to it.

use std::future::Future;
use std::sync::Arc;

use http::HeaderName;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
};

use super::EgressPolicy;
use super::send::execute;

/// [`WasiHttpHooks`] that send every `wasi:http` request of one component through egress.
///
/// Its forbidden-header filter adds every header that carries a secret (for any destination) to
/// wasmtime's default forbidden set, so a component cannot set `Authorization` itself when a
/// secret uses it. (Whatever passes this filter still goes through
/// [`EgressPolicy::drop_host_set_headers`].) Refusals reach the component as
/// `HTTP-request-denied` (not granted), `destination-IP-prohibited` (restricted address),
/// `HTTP-response-body-size` (too large), `connection-limit-reached` (too many requests in
/// flight) or `HTTP-response-timeout` (past the total deadline).
pub(crate) struct EgressHooks {
    policy: Arc<EgressPolicy>,
    forbidden: ForbiddenHeaderFilter,
}

impl EgressHooks {
    /// Hooks enforcing `policy`.
    pub(crate) fn new(policy: Arc<EgressPolicy>) -> Self {
        let reserved = policy.reserved_headers();
        let forbidden: ForbiddenHeaderFilter = Arc::new(move |name: &HeaderName| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name) || reserved.contains(name)
        });
        EgressHooks { policy, forbidden }
    }
}

impl std::fmt::Debug for EgressHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressHooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for EgressHooks {
    fn is_forbidden_header(&mut self, name: &HeaderName) -> bool {
        (self.forbidden)(name)
    }

    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        self.forbidden.clone()
    }

    fn is_supported_scheme(&mut self, scheme: &http::uri::Scheme) -> bool {
        *scheme == http::uri::Scheme::HTTP || *scheme == http::uri::Scheme::HTTPS
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> Box<
        dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
            + Send,
    > {
        // The response is fully buffered before it is returned, so there is no response
        // processing to report on.
        drop(fut);
        let policy = self.policy.clone();
        Box::new(async move {
            let response = execute(&policy, request, options).await?;
            let response =
                response.map(|body| Full::new(body).map_err(|n| match n {}).boxed_unsync());
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}
