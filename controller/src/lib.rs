//! Weir's controller (placeholder until translation lands).
#![forbid(unsafe_code)]
