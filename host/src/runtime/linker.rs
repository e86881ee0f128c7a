//! Linkers that contain exactly what a grant allows.
//!
//! The base set is what a Rust `wasm32-wasip2` component needs to run at all
//! and that exposes nothing of the machine: streams, clocks, randomness, and a
//! CLI surface with an empty environment, no arguments, closed stdin and
//! output going to the host's log. Everything else is added only when granted.
//! `wasi:filesystem` and `wasi:sockets` are never added.
//!
//! Each airlock capability implements its host trait on its own context
//! (`caps::kv::KvCtx`, `caps::clock::TimerCtx`, ...); this is the one place
//! that knows they are fields of [`ComponentState`], and projects to them.

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::p2::bindings::{cli, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};

use super::state::ComponentState;
use crate::bindings::{clock, kv, log, websocket};
use crate::caps::clock::TimerCtx;
use crate::caps::kv::KvCtx;
use crate::caps::log::GuestLog;
use crate::caps::websocket::WsConnections;
use crate::manifest::Kind;
use crate::manifest::Linkable;

/// Build the linker for a component of `kind` with `grant`.
pub fn linker(
    engine: &Engine,
    kind: Kind,
    grant: Linkable,
) -> wasmtime::Result<Linker<ComponentState>> {
    let mut l = Linker::new(engine);
    base(&mut l)?;
    log::add_to_linker::<_, HasSelf<GuestLog>>(&mut l, |s| &mut s.log)?;
    if kind == Kind::Adapter {
        clock::add_to_linker::<_, HasSelf<TimerCtx>>(&mut l, |s| &mut s.timers)?;
    }
    if grant.kv {
        kv::add_to_linker::<_, HasSelf<KvCtx>>(&mut l, |s| &mut s.kv)?;
    }
    if grant.websocket && kind == Kind::Adapter {
        websocket::add_to_linker::<_, HasSelf<WsConnections>>(&mut l, |s| &mut s.ws)?;
    }
    if grant.outbound_http && kind == Kind::Adapter {
        // wasmtime-wasi-http's `types`; its `outgoing-handler` as egress
        // wraps it (the request options a guest hands over are given back).
        use wasmtime_wasi_http::p2::bindings::http;
        http::types::add_to_linker::<_, wasmtime_wasi_http::WasiHttp>(
            &mut l,
            &http::types::LinkOptions::default(),
            <ComponentState as wasmtime_wasi_http::WasiHttpView>::http,
        )?;
        crate::caps::egress::add_outgoing_handler_to_linker(&mut l)?;
    }
    Ok(l)
}

fn base(l: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    type T = ComponentState;
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(l)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    Ok(())
}
