//! Runs `weir-gateway` in standalone mode on an address block of its own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

/// A running gateway with its config folder. Killed on drop.
pub struct Gateway {
    child: Child,
    pub dir: tempfile::TempDir,
    pub admin: SocketAddr,
    /// The pool is a single address, so every Gateway object gets this one.
    pub address: IpAddr,
    log: PathBuf,
}

/// `weir-gateway` from the target directory this test was built into (or
/// `WEIR_GATEWAY_BIN`). The test command builds the binaries before the tests.
pub fn gateway_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_GATEWAY_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap_or(Path::new("."));
    let path = profile_dir.join("weir-gateway");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --bin weir-gateway` (tests/run.sh does)",
        path.display()
    );
    path
}

/// A loopback address no other test in this run uses.
pub fn unique_loopback() -> IpAddr {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let salt: u8 = rand::random();
    IpAddr::V4(Ipv4Addr::new(127, 40 + (std::process::id() % 50) as u8, salt, n))
}

fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

impl Gateway {
    /// Writes `files` (name → YAML) into a fresh folder and starts the gateway on it.
    pub fn start(files: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body)?;
        }
        let address = unique_loopback();
        let admin = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let log = dir.path().join("gateway.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(gateway_binary())
            .arg("--config-dir")
            .arg(dir.path())
            .arg("--admin-address")
            .arg(admin.to_string())
            .arg("--address-pool")
            .arg(format!("{address}/32"))
            .arg("--threads")
            .arg("1")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("starting weir-gateway")?;
        let gateway = Gateway { child, dir, admin, address, log };
        gateway.wait_ready()?;
        Ok(gateway)
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(answer) = crate::client::get_blocking(self.admin, "localhost", "/ready") {
                if answer.status == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("gateway not ready within 20s; log:\n{}", self.log_tail())
    }

    pub fn write(&self, name: &str, body: &str) -> anyhow::Result<()> {
        // Write then rename, as editors and ConfigMap volumes do.
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, self.dir.path().join(name))?;
        Ok(())
    }

    /// `GET /status` of the admin API.
    pub fn status(&self) -> anyhow::Result<Value> {
        let answer = crate::client::get_blocking(self.admin, "localhost", "/status")?;
        Ok(serde_json::from_slice(&answer.body)?)
    }

    /// The status stanza of one object, if listed.
    pub fn object_status(&self, kind: &str, namespace: &str, name: &str) -> anyhow::Result<Option<Value>> {
        let status = self.status()?;
        Ok(status["objects"].as_array().and_then(|objects| {
            objects
                .iter()
                .find(|o| o["kind"] == kind && o["namespace"] == namespace && o["name"] == name)
                .map(|o| o["status"].clone())
        }))
    }

    /// Polls until `check` holds, or fails with the last status and the log.
    pub fn eventually<F: FnMut(&Gateway) -> anyhow::Result<bool>>(&self, what: &str, mut check: F) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last_err = None;
        while Instant::now() < deadline {
            match check(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_err = Some(e),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "timed out waiting for: {what} (last error: {last_err:?})\nstatus: {}\nlog:\n{}",
            self.status().map(|s| s.to_string()).unwrap_or_default(),
            self.log_tail()
        )
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // Access-log lines drown everything else while a test polls.
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("weir::access")).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
