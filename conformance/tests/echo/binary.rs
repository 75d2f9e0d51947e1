//! The real `weir-echo` binary: command line, READY, SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use http::StatusCode;

use crate::support::{get, http1};

#[tokio::test]
async fn prints_ready_serves_and_exits_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-echo"))
        .args(["--namespace", "ns", "--pod", "echo-v1-a-b", "--service", "echo"])
        .args(["--http", "127.0.0.1:0", "--h2c", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    assert_eq!(ready, "READY\n");

    // The bound addresses were logged before READY.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addrs = std::collections::HashMap::new();
    while addrs.len() < 3 {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "stderr ended early");
        if let Some((kind, addr)) = line.trim().strip_prefix("weir-echo: listening ").and_then(|l| l.split_once('=')) {
            addrs.insert(kind.to_string(), addr.parse::<SocketAddr>().unwrap());
        }
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let answer = http1(addrs["http"], get("/hello")).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["pod"], "echo-v1-a-b");
    assert_eq!(http1(addrs["control"], get("/health")).await.unwrap().status, StatusCode::OK);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let mut rest = String::new();
    assert_eq!(stdout.read_line(&mut rest).unwrap(), 0, "READY is the only stdout line");
}

#[test]
fn bad_command_line_fails() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir-echo"))
        .args(["--namespace", "ns", "--pod", "p", "--http", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .args(["--tls", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "--tls needs --cert and --key");
    assert!(output.stdout.is_empty(), "no READY");
}
