//! Conversions between alloy's types and PostgreSQL columns, and the error for a value that
//! cannot have been written by pactum (a corrupt row).

use alloy::primitives::{Address, B256, U256};

use crate::{Error, Result};

pub(crate) fn int(value: u64) -> i64 {
    // Block numbers, timestamps and windows are far below 2^63 on any real chain.
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn uint(table: &'static str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("negative value {value}")))
}

pub(crate) fn corrupt(table: &'static str, detail: String) -> Error {
    Error::Corrupt { table, detail }
}

pub(crate) fn b256(table: &'static str, bytes: &[u8]) -> Result<B256> {
    B256::try_from(bytes)
        .map_err(|_| corrupt(table, format!("{} bytes where 32 expected", bytes.len())))
}

pub(crate) fn address(table: &'static str, bytes: &[u8]) -> Result<Address> {
    Address::try_from(bytes)
        .map_err(|_| corrupt(table, format!("{} bytes where 20 expected", bytes.len())))
}

pub(crate) fn amount(table: &'static str, text: &str) -> Result<U256> {
    text.parse()
        .map_err(|_| corrupt(table, format!("{text:?} is not a uint256")))
}
