//! Tests of the `weir-echo` backend: its server functions on 127.0.0.1 port 0
//! (in process), and the real binary for the command line and READY.

#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "../../src/echo/mod.rs"]
mod echo;

mod binary;
mod control;
mod grpc;
mod http;
mod support;
mod tcp;
mod tls;
