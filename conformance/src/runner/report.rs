//! Results per profile, core vs extended, as upstream's ConformanceReport, and
//! the human summary.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::json;

use super::case::Case;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub profiles: Vec<String>,
    pub features: Vec<String>,
    pub outcome: Outcome,
    pub seconds: f64,
}

impl CaseResult {
    pub fn of(case: &Case, outcome: Outcome, seconds: f64) -> Self {
        CaseResult { name: case.name.clone(), profiles: case.profiles.clone(), features: case.features.clone(), outcome, seconds }
    }
}

/// Profiles always listed in the report.
pub const PROFILES: &[&str] = &["GATEWAY-HTTP", "GATEWAY-TLS", "GATEWAY-GRPC", "ISTIO", "NONE"];

/// upstream/INDEX.yaml: case name -> profile -> level.
pub type Levels = HashMap<String, HashMap<String, String>>;

pub fn load_index(path: &Path) -> Levels {
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        #[serde(default)]
        profiles: Vec<ProfileLevel>,
    }
    #[derive(serde::Deserialize)]
    struct ProfileLevel {
        profile: String,
        level: String,
    }
    let Ok(text) = std::fs::read_to_string(path) else { return Levels::new() };
    let entries: Vec<Entry> = match serde_yaml::from_str(&text) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warning: cannot parse {}: {e}; using the core/extended rule", path.display());
            return Levels::new();
        }
    };
    entries.into_iter().map(|e| (e.name, e.profiles.into_iter().map(|p| (p.profile, p.level)).collect())).collect()
}

/// Core when the features are only Gateway, ReferenceGrant and the profile's route kind.
pub fn rule_level(profile: &str, features: &[String]) -> &'static str {
    let route: &[&str] = match profile {
        "GATEWAY-HTTP" => &["HTTPRoute"],
        "GATEWAY-TLS" => &["TLSRoute"],
        "GATEWAY-GRPC" => &["GRPCRoute"],
        "GATEWAY-TCP" => &["TCPRoute"],
        "GATEWAY-UDP" => &["UDPRoute"],
        "ISTIO" => &["IstioGateway", "VirtualService"],
        _ => &[],
    };
    let core = features.iter().all(|f| f == "Gateway" || f == "ReferenceGrant" || route.contains(&f.as_str()));
    if core {
        "core"
    } else {
        "extended"
    }
}

#[derive(Default)]
struct Block {
    passed: Vec<String>,
    failed: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
}

impl Block {
    fn result(&self) -> &'static str {
        if !self.failed.is_empty() {
            "failure"
        } else if self.skipped.is_empty() && !self.passed.is_empty() {
            "success"
        } else {
            "partial"
        }
    }
    fn to_json(&self) -> serde_json::Value {
        json!({
            "result": self.result(),
            "statistics": {"Passed": self.passed.len(), "Failed": self.failed.len(), "Skipped": self.skipped.len()},
            "passed": self.passed,
            "failed": self.failed.iter().map(|(n, r)| json!({"name": n, "reason": r})).collect::<Vec<_>>(),
            "skipped": self.skipped.iter().map(|(n, r)| json!({"name": n, "reason": r})).collect::<Vec<_>>(),
        })
    }
}

/// profile -> (core, extended)
fn aggregate(results: &[CaseResult], levels: &Levels) -> BTreeMap<String, (Block, Block)> {
    let mut out: BTreeMap<String, (Block, Block)> = BTreeMap::new();
    for p in PROFILES {
        out.entry(p.to_string()).or_default();
    }
    for r in results {
        let profiles = if r.profiles.is_empty() { vec!["NONE".to_string()] } else { r.profiles.clone() };
        for p in profiles {
            let level = levels
                .get(&r.name)
                .and_then(|m| m.get(&p))
                .map(String::as_str)
                .unwrap_or_else(|| rule_level(&p, &r.features));
            let (core, ext) = out.entry(p).or_default();
            let block = if level == "core" { core } else { ext };
            match &r.outcome {
                Outcome::Passed => block.passed.push(r.name.clone()),
                Outcome::Failed(why) => block.failed.push((r.name.clone(), why.clone())),
                Outcome::Skipped(why) => block.skipped.push((r.name.clone(), why.clone())),
            }
        }
    }
    out
}

pub fn report_yaml(results: &[CaseResult], levels: &Levels, gateway_api_version: &str, version: &str) -> String {
    let profiles: Vec<serde_json::Value> = aggregate(results, levels)
        .iter()
        .map(|(name, (core, ext))| json!({"name": name, "core": core.to_json(), "extended": ext.to_json()}))
        .collect();
    let report = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ConformanceReport",
        "date": chrono_like_now(),
        "implementation": {"organization": "weir", "project": "weir", "url": "", "version": version, "contact": []},
        "gatewayAPIVersion": gateway_api_version,
        "mode": if super::features::try_unclaimed() { "try-unclaimed" } else { "default" },
        "profiles": profiles,
    });
    serde_yaml::to_string(&report).unwrap_or_else(|e| format!("# report serialisation failed: {e}\n"))
}

/// Seconds since the epoch written as RFC 3339 (UTC), without a date crate.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil-from-days (Howard Hinnant).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

pub fn summary(results: &[CaseResult], levels: &Levels) -> String {
    let mut s = String::new();
    for (name, (core, ext)) in aggregate(results, levels) {
        let total = core.passed.len() + core.failed.len() + core.skipped.len() + ext.passed.len() + ext.failed.len() + ext.skipped.len();
        if total == 0 {
            continue;
        }
        s.push_str(&format!(
            "{name}: core {} passed, {} failed, {} skipped; extended {} passed, {} failed, {} skipped\n",
            core.passed.len(),
            core.failed.len(),
            core.skipped.len(),
            ext.passed.len(),
            ext.failed.len(),
            ext.skipped.len()
        ));
    }
    let mut sorted: Vec<&CaseResult> = results.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for r in &sorted {
        if let Outcome::Failed(why) = &r.outcome {
            s.push_str(&format!("FAILED  {} ({:.1}s): {}\n", r.name, r.seconds, why));
        }
    }
    for r in &sorted {
        if let Outcome::Skipped(why) = &r.outcome {
            s.push_str(&format!("SKIPPED {}: {}\n", r.name, why));
        }
    }
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    s.push_str(&format!(
        "{} passed, {} failed, {} skipped\n",
        count(|o| matches!(o, Outcome::Passed)),
        count(|o| matches!(o, Outcome::Failed(_))),
        count(|o| matches!(o, Outcome::Skipped(_)))
    ));
    s
}

/// The commit named in upstream/SOURCE.
pub fn gateway_api_version(upstream: &Path) -> String {
    let text = std::fs::read_to_string(upstream.join("SOURCE")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("commit ").map(|r| r.split_whitespace().next().unwrap_or("").to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, profiles: &[&str], features: &[&str], outcome: Outcome) -> CaseResult {
        CaseResult {
            name: name.into(),
            profiles: profiles.iter().map(|s| s.to_string()).collect(),
            features: features.iter().map(|s| s.to_string()).collect(),
            outcome,
            seconds: 1.0,
        }
    }

    #[test]
    fn aggregates_core_extended_and_none() {
        let results = vec![
            r("A", &["GATEWAY-HTTP"], &["Gateway", "HTTPRoute"], Outcome::Passed),
            r("B", &["GATEWAY-HTTP"], &["Gateway", "HTTPRoute", "HTTPRouteRetry"], Outcome::Failed("step 3: boom".into())),
            r("C", &["GATEWAY-HTTP", "GATEWAY-TLS"], &["Gateway"], Outcome::Skipped("why".into())),
            r("D", &[], &["Gateway", "Odd"], Outcome::Passed),
        ];
        let mut levels = Levels::new();
        levels.insert("A".into(), [("GATEWAY-HTTP".to_string(), "extended".to_string())].into());
        let agg = aggregate(&results, &levels);
        let (core, ext) = &agg["GATEWAY-HTTP"];
        assert_eq!(core.skipped.len(), 1, "C is core by the rule");
        assert_eq!(ext.passed, vec!["A".to_string()], "INDEX level wins");
        assert_eq!(ext.failed.len(), 1);
        assert_eq!(ext.result(), "failure");
        assert_eq!(core.result(), "partial");
        assert_eq!(agg["NONE"].1.passed, vec!["D".to_string()]);
        assert_eq!(agg["GATEWAY-TLS"].0.skipped.len(), 1);
        let yaml = report_yaml(&results, &levels, "abc", "0.1.0");
        let v: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("yaml");
        assert_eq!(v["implementation"]["organization"], serde_yaml::Value::from("weir"));
        assert_eq!(v["gatewayAPIVersion"], serde_yaml::Value::from("abc"));
        let s = summary(&results, &levels);
        assert!(s.ends_with("2 passed, 1 failed, 1 skipped\n"), "{s}");
        assert!(s.contains("FAILED  B"));
    }

    #[test]
    fn level_rule() {
        assert_eq!(rule_level("GATEWAY-HTTP", &["Gateway".into(), "HTTPRoute".into(), "ReferenceGrant".into()]), "core");
        assert_eq!(rule_level("GATEWAY-TLS", &["Gateway".into(), "HTTPRoute".into()]), "extended");
    }
}
