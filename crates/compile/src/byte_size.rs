//! Byte sizes written like Kubernetes quantities: a whole number of bytes (`65536`), or a whole
//! number with a binary suffix `Ki`, `Mi`, `Gi` (optionally followed by `B`: `32KiB`) or a
//! decimal one `k`, `M`, `G`. Fractions, exponents and other suffixes are refused: a buffer size
//! is a count of bytes.

use model::client_policy::ByteQuantity;

/// The number of bytes `quantity` stands for.
pub(crate) fn parse(quantity: &ByteQuantity) -> Result<u64, String> {
    match quantity {
        ByteQuantity::Number(bytes) => {
            u64::try_from(*bytes).map_err(|_| format!("{bytes} is negative"))
        }
        ByteQuantity::Text(text) => parse_text(text),
    }
}

fn parse_text(text: &str) -> Result<u64, String> {
    let invalid = || format!("{text:?} is not a byte size (expected e.g. 65536, 32KiB, 1MiB, 64k)");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(invalid());
    }
    let value: u64 = text[..digits].parse().map_err(|_| invalid())?;
    let multiplier: u64 = match &text[digits..] {
        "" | "B" => 1,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return Err(invalid()),
    };
    value.checked_mul(multiplier).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Result<u64, String> {
        parse(&ByteQuantity::Text(value.to_owned()))
    }

    #[test]
    fn parses_numbers_and_suffixes() {
        assert_eq!(parse(&ByteQuantity::Number(65536)), Ok(65536));
        assert_eq!(text("65536"), Ok(65536));
        assert_eq!(text("32KiB"), Ok(32 * 1024));
        assert_eq!(text("32Ki"), Ok(32 * 1024));
        assert_eq!(text("1MiB"), Ok(1024 * 1024));
        assert_eq!(text("2Gi"), Ok(2 << 30));
        assert_eq!(text("64k"), Ok(64_000));
        assert_eq!(text("1M"), Ok(1_000_000));
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "",
            "KiB",
            "1.5Mi",
            "1e6",
            "32KB",
            "32K",
            "-1",
            "1 MiB",
            "99999999999Gi",
        ] {
            assert!(text(bad).is_err(), "{bad}");
        }
        assert!(parse(&ByteQuantity::Number(-1)).is_err());
    }
}
