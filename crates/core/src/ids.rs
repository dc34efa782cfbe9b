//! The ids clients send, parsed strictly.

use alloy::primitives::B256;

/// Parses an on-chain agreement id: `0x` followed by exactly 64 hex digits (either case).
pub fn parse_agreement_id(raw: &str) -> Option<B256> {
    let hex = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_0x_and_64_hex_digits() {
        let id = format!("0x{}", "ab".repeat(32));
        assert_eq!(parse_agreement_id(&id), Some(B256::repeat_byte(0xab)));
        assert_eq!(
            parse_agreement_id(&format!("0X{}", "AB".repeat(32))),
            Some(B256::repeat_byte(0xab))
        );
        for bad in [
            "",
            "0x",
            &"ab".repeat(32),
            &format!("0x{}", "ab".repeat(31)),
            &format!("0x{}", "ab".repeat(33)),
            &format!("0x{}g", "a".repeat(63)),
            &format!(" 0x{}", "ab".repeat(32)),
            &format!("0x+{}", "a".repeat(63)),
        ] {
            assert_eq!(parse_agreement_id(bad), None, "{bad:?}");
        }
    }
}
