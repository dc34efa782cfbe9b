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
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Invalid request body",
            e.to_string(),
        )
    })
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
