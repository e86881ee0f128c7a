//! airlock's integration tests: the real binary and the real runtime, with
//! guest fixtures built from `tests/fixtures/*` for wasm32-wasip2.

mod support;

mod access;
mod alerts;
mod architecture;
mod attachments;
mod audit;
mod audit_otlp;
mod audit_rows;
mod browser;
mod channel;
mod cli;
mod crash;
mod discord;
mod disk_full;
mod doctor;
mod egress;
mod filters;
mod fuzz_corpus;
mod hub;
mod hub_fakechat;
mod inbox;
mod plugin;
mod python_adapter;
mod relay;
mod runtime;
mod sandbox;
mod secrets;
mod session;
mod sessions_cli;
mod slack;
mod telegram;
mod try_cmd;
mod untrusted_text;
mod webhook_signatures;
mod websocket;
