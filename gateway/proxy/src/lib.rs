//! Weir's data plane (placeholder until the proxy lands).
#![forbid(unsafe_code)]
