//! `wasi:http/outgoing-handler.handle` as airlock links it: wasmtime-wasi-http's
//! own implementation, and then the request options given back.
//!
//! Why: `handle` takes its `request-options` argument by ownership, but
//! wasmtime-wasi-http 48 only reads the options from the resource table and
//! never deletes them. Every request made with a timeout (the guest SDK sets
//! one on every request of the bundled adapters) left one entry behind, and
//! an adapter's instance trapped on "resource table has no free keys" after
//! about 4,000 requests (the table's cap), failing a call whose message had
//! already gone out. Found by the soak benchmark.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};

/// The interface, at the version wasmtime-wasi-http implements; the linker
/// matches any 0.2 import against it.
const INTERFACE: &str = "wasi:http/outgoing-handler@0.2.12";

/// Links `handle` for stores whose data is a [`WasiHttpView`].
pub fn add_to_linker<T: WasiHttpView + 'static>(l: &mut Linker<T>) -> wasmtime::Result<()> {
    l.instance(INTERFACE)?.func_wrap(
        "handle",
        |mut store,
         (request, options): (
            Resource<HostOutgoingRequest>,
            Option<Resource<types::RequestOptions>>,
        )| {
            let mut view = store.data_mut().http();
            // The guest gave the options up; once read, nothing else holds them.
            let given = options
                .as_ref()
                .map(|o| Resource::<types::RequestOptions>::new_own(o.rep()));
            let outcome = outgoing_handler::Host::handle(&mut view, request, options);
            if let Some(given) = given {
                let _ = view.table.delete(given);
            }
            let answer: Result<Resource<HostFutureIncomingResponse>, types::ErrorCode> =
                match outcome {
                    Ok(future) => Ok(future),
                    Err(e) => Err(types::Host::convert_error_code(&mut view, e)?),
                };
            Ok((answer,))
        },
    )
}
