//! Parses Go `time.ParseDuration` strings (`1s`, `500ms`, `1.5s`, `1h2m`), as the echo-basic `delay` and
//! `delayRetry` query parameters use them.

use std::time::Duration;

/// Nanoseconds in one Go duration unit, or `None` for a unit Go does not know.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Go rejects durations that do not fit an `int64` of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses `text` with Go's duration grammar: an optional sign, then one or more `<decimal><unit>` terms, or the
/// bare `0`.
///
/// A negative duration parses to [`Duration::ZERO`], because Go's `time.Sleep` returns at once for it.
///
/// # Errors
///
/// Returns Go's message (`time: invalid duration "..."`, `time: missing unit ...`, `time: unknown unit ...`)
/// for text Go would reject, including values over `i64::MAX` nanoseconds.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after_whole) = rest.split_at(whole_len);
        let (fraction, after_number) = match after_whole.strip_prefix('.') {
            Some(after_dot) => {
                let fraction_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(fraction_len)
            }
            None => ("", after_whole),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = after_number
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after_number.len(), |(index, _)| index);
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        let Some(per_unit) = unit_nanos(unit) else {
            return Err(format!("time: unknown unit {unit:?} in duration {text:?}"));
        };
        total = total
            .checked_add(term_nanos(whole, fraction, per_unit).ok_or_else(invalid)?)
            .filter(|sum| *sum <= MAX_NANOS)
            .ok_or_else(invalid)?;
        rest = after_unit;
    }
    if negative {
        return Ok(Duration::ZERO);
    }
    let nanos = u64::try_from(total).map_err(|_| invalid())?;
    Ok(Duration::from_nanos(nanos))
}

/// Nanoseconds in `<whole>.<fraction>` units of `per_unit` nanoseconds, or `None` past `i64::MAX`.
fn term_nanos(whole: &str, fraction: &str, per_unit: u128) -> Option<u128> {
    let whole_value = if whole.is_empty() {
        0
    } else {
        whole.parse::<u128>().ok()?
    };
    let mut nanos = whole_value.checked_mul(per_unit)?;
    // Digits past the 18th cannot change a nanosecond count below an hour's worth of units; Go drops them too.
    let kept = &fraction[..fraction.len().min(18)];
    if !kept.is_empty() {
        let fraction_value: u128 = kept.parse().ok()?;
        let scale = 10u128.checked_pow(u32::try_from(kept.len()).ok()?)?;
        nanos = nanos.checked_add(fraction_value * per_unit / scale)?;
    }
    (nanos <= MAX_NANOS).then_some(nanos)
}
