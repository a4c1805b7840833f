//! Gateway API durations (GEP-2257): one or more `<number><unit>` parts, units `h`, `m`, `s`,
//! `ms`, e.g. `1h`, `30s`, `500ms`, `1m30s`, `0s`.

use std::time::Duration;

/// Parses a GEP-2257 duration.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration (expected e.g. 500ms, 10s, 1m30s, 1h)");
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
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
            return Err(invalid());
        };
        total += unit * u32::try_from(value).map_err(|_| invalid())?;
        rest = &rest[len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gep_2257_forms() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_other_forms() {
        for bad in ["", "1", "1.5s", "s", "1d", "-1s", "1s2", "123456s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
