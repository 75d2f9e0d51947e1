//! `accessLog`: the gateway logs one line per request on target `weir::access`
//! (`METHOD HOST PATH STATUS route=.. upstream=.. flags=.. attempts=.. duration_ms=..`);
//! the entries written since the previous step began must include each expected one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_yaml::Value;

use crate::runner::context::CaseCtx;

/// Removes ANSI colour sequences.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// One parsed access-log entry: field name (FORMAT.md's) -> value.
pub fn parse_line(line: &str) -> Option<BTreeMap<String, String>> {
    let line = strip_ansi(line);
    let at = line.find("weir::access")?;
    let msg = line[at..].split_once(": ")?.1.trim();
    let mut parts = msg.split_whitespace();
    let mut m = BTreeMap::new();
    m.insert("method".to_string(), parts.next()?.to_string());
    m.insert("authority".to_string(), parts.next()?.to_string());
    m.insert("path".to_string(), parts.next()?.to_string());
    m.insert("status".to_string(), parts.next()?.to_string());
    for kv in parts {
        if let Some((k, v)) = kv.split_once('=') {
            let key = match k {
                "route" => "routeName",
                "upstream" => "upstreamHost",
                "flags" => "responseFlags",
                other => other,
            };
            m.insert(key.to_string(), v.to_string());
        }
    }
    Some(m)
}

fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// Does an entry hold every expected field? Response flags may be a comma list.
pub fn entry_matches(entry: &BTreeMap<String, String>, want: &BTreeMap<String, Value>) -> bool {
    want.iter().all(|(k, v)| {
        let want = value_string(v);
        match entry.get(k) {
            Some(got) if k == "responseFlags" => got.split(',').any(|f| f == want),
            Some(got) => *got == want,
            None => false,
        }
    })
}

pub async fn run(ctx: &mut CaseCtx, spec: &Value, since: u64) -> Result<(), String> {
    let wants: Vec<BTreeMap<String, Value>> = spec
        .get("contains")
        .cloned()
        .map(serde_yaml::from_value)
        .transpose()
        .map_err(|e| format!("accessLog.contains: {e}"))?
        .unwrap_or_default();
    let path = ctx.gw()?.log_path.clone();
    let start = Instant::now();
    loop {
        let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let from = usize::try_from(since).unwrap_or(0).min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[from..]);
        let entries: Vec<_> = text.lines().filter_map(parse_line).collect();
        let missing: Vec<_> = wants.iter().filter(|w| !entries.iter().any(|e| entry_matches(e, w))).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(3) {
            let mut flags: BTreeMap<String, usize> = BTreeMap::new();
            for e in &entries {
                *flags.entry(format!("{} {}", e.get("status").map_or("-", |s| s), e.get("responseFlags").map_or("-", |s| s))).or_default() += 1;
            }
            return Err(format!("access log lacks entries {missing:?} ({} entries since the previous step; status/flags seen: {flags:?})", entries.len()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weir_access_lines() {
        let line = "\u{1b}[2m2026-11-21T23:42:16Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mweir::access\u{1b}[0m\u{1b}[2m:\u{1b}[0m GET reviews.example.com /x 503 route=VirtualService/bookinfo/reviews/0 upstream=- flags=UO attempts=1 duration_ms=2";
        let e = parse_line(line).expect("entry");
        assert_eq!(e["status"], "503");
        assert_eq!(e["responseFlags"], "UO");
        assert_eq!(e["authority"], "reviews.example.com");
        let want: BTreeMap<String, Value> = serde_yaml::from_str("{status: 503, responseFlags: UO}").expect("yaml");
        assert!(entry_matches(&e, &want));
        let other: BTreeMap<String, Value> = serde_yaml::from_str("{status: 503, responseFlags: UH}").expect("yaml");
        assert!(!entry_matches(&e, &other));
        assert!(parse_line("INFO weir_gateway: admin API on http://x").is_none());
    }
}
