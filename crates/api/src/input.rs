//! Parsing what clients send: ids, addresses, amounts, hex, bodies. Every failure is a `400`
//! problem naming the field.

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, U256};
use axum::http::StatusCode;

use crate::problem::Problem;

pub(crate) fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, "Invalid request", detail)
}

pub(crate) fn parse_address(name: &str, raw: &str) -> Result<Address, Problem> {
    Address::from_str(raw).map_err(|_| {
        bad_request(
            "invalid_parameter",
            format!("{name}: {raw:?} is not an address"),
        )
    })
}

pub(crate) fn parse_amount(name: &str, raw: &str) -> Result<U256, Problem> {
    U256::from_str(raw).map_err(|_| {
        bad_request(
            "invalid_parameter",
            format!("{name}: {raw:?} is not a token amount (decimal or 0x hex base units)"),
        )
    })
}

pub(crate) fn parse_bytes(name: &str, raw: &str) -> Result<Bytes, Problem> {
    Bytes::from_str(raw).map_err(|_| {
        bad_request(
            "invalid_parameter",
            format!("{name}: {raw:?} is not 0x hex"),
        )
    })
}

pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let invalid = |detail: String| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Invalid request body",
            detail,
        )
    };
    // JSON can only carry a NUL as the escape `\u0000`; only a body with one is looked at closely.
    if body.windows(6).any(|w| w.eq_ignore_ascii_case(br"\u0000")) {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
        if holds_nul(&value) {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_text",
                "Invalid text",
                "text may not contain the NUL character (U+0000)",
            ));
        }
    }
    match serde_json::from_slice(body) {
        Ok(parsed) => Ok(parsed),
        // JSON does not tell `7.0` from `7`: a whole number written with a fraction is read as
        // the integer it is (only on this rare path, after the direct parse failed).
        Err(e) if e.to_string().starts_with("invalid type: floating point") => {
            let mut value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
            // The client's own free-form data (`metadata`) is kept exactly as sent.
            match &mut value {
                serde_json::Value::Object(fields) => fields
                    .iter_mut()
                    .filter(|(k, _)| k.as_str() != "metadata")
                    .for_each(|(_, v)| integral_floats_as_integers(v)),
                other => integral_floats_as_integers(other),
            }
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
        }
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// Rewrites every number in `value` that is a whole number written as a float (`7.0`, `1e3`)
/// into that integer, when it fits one exactly.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            // Below 2^53 every whole float is exact; from there on it may not be the client's
            // integer (9007199254740993.0 reads as ...992).
            const EXACT: f64 = 9_007_199_254_740_992.0;
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < EXACT) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Whether any string or key in `value` contains U+0000 (which no text column can store).
fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Parses `0x` + 64 hex digits.
pub fn parse_agreement_id(raw: &str) -> Result<B256, Problem> {
    let hex = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X"));
    match hex {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            raw.parse().map_err(|_| Problem::invalid_agreement_id(raw))
        }
        _ => Err(Problem::invalid_agreement_id(raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        #[serde(default)]
        meta: serde_json::Value,
    }

    #[test]
    fn a_nul_anywhere_in_a_body_is_refused_as_invalid_text() {
        for body in [
            r#"{"name": "a\u0000b"}"#,
            r#"{"name": "ok", "meta": {"k": ["\u0000"]}}"#,
            r#"{"name": "ok", "meta": {"\u0000": 1}}"#,
        ] {
            let refused = parse_body::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(
                (refused.0.status, refused.0.code.as_str()),
                (422, "invalid_text"),
                "{body}"
            );
            assert!(refused.0.detail.contains("NUL"), "{body}");
        }
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_text_not_a_nul() {
        // `\\u0000` in JSON is a backslash followed by "u0000": accepted.
        let body = r#"{"name": "a\\u0000b"}"#;
        assert!(parse_body::<Body>(body.as_bytes()).is_ok());
        assert!(parse_body::<Body>(br#"{"name": "plain"}"#).is_ok());
    }
}

#[cfg(test)]
mod numbers {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Body {
        deadline: u64,
        nested: Vec<i64>,
    }

    #[test]
    fn whole_numbers_written_as_floats_are_read_as_integers() {
        let parsed: Body = parse_body(br#"{"deadline": 1659.0, "nested": [1e3, -2.0]}"#).unwrap();
        assert_eq!(parsed.deadline, 1659);
        // Large ones too: the float is parsed exactly (serde_json's `float_roundtrip`), not to
        // the nearest quarter.
        let parsed: Body =
            parse_body(br#"{"deadline": 1929059507987343.0, "nested": []}"#).unwrap();
        assert_eq!(parsed.deadline, 1_929_059_507_987_343);
        let parsed: Body = parse_body(br#"{"deadline": 1659.0, "nested": [1e3, -2.0]}"#).unwrap();
        assert_eq!(
            parsed,
            Body {
                deadline: 1659,
                nested: vec![1000, -2]
            }
        );
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct WithMetadata {
        quantity: u64,
        metadata: serde_json::Value,
    }

    #[test]
    fn free_form_metadata_is_kept_as_sent() {
        let parsed: WithMetadata =
            parse_body(br#"{"quantity": 3.0, "metadata": {"ratio": 2.0}}"#).unwrap();
        assert_eq!(parsed.quantity, 3);
        assert_eq!(parsed.metadata, serde_json::json!({"ratio": 2.0}));
        assert!(parsed.metadata["ratio"].is_f64());
    }

    #[test]
    fn fractions_and_inexact_floats_stay_refused() {
        for body in [
            r#"{"deadline": 1.5, "nested": []}"#,
            r#"{"deadline": 1e300, "nested": []}"#,
            r#"{"deadline": -1.0, "nested": []}"#,
            r#"{"deadline": 9007199254740993.0, "nested": []}"#,
        ] {
            let refused = parse_body::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(refused.0.code, "invalid_body", "{body}");
        }
    }
}
