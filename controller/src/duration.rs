//! Gateway API `Duration`: `^([0-9]{1,5}(h|m|s|ms)){1,4}$` (GEP-2257).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. 1h, 10m, 1s, 500ms or 1h2m3s")]
pub struct DurationError(pub String);

/// Parses a GEP-2257 duration. `0s` is a valid zero duration.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = || DurationError(text.to_string());
    let mut total = Duration::ZERO;
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(fail)?;
        if digits == 0 || digits > 5 {
            return Err(fail());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| fail())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else {
            return Err(fail());
        };
        rest = &rest[len..];
        total += unit * u32::try_from(value).map_err(|_| fail())?;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(fail());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gep_2257_examples() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("100000s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
