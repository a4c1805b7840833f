//! Random version-4 UUIDs, for request ids and the retry simulator's `{uuid}`.

/// A fresh random UUID in the usual `8-4-4-4-12` hex form.
pub(crate) fn new_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    // RFC 9562 section 5.4: version 4, variant 10.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
