//! Keyset pagination, the same for every list: newest first, `limit` 1 to [`MAX_PAGE`]
//! ([`DEFAULT_PAGE`] when not asked), and an opaque `cursor` naming where the previous page
//! ended (a row's creation order, `seq`).

use crate::problem::Problem;

/// The largest page.
pub(crate) const MAX_PAGE: u32 = 100;
/// The page when none is asked for.
pub(crate) const DEFAULT_PAGE: u32 = 50;

/// A page size asked for: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when not given.
pub(crate) fn limit(asked: Option<u32>) -> Result<u32, Problem> {
    let limit = asked.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(crate::input::bad_request(
            "invalid_parameter",
            format!("limit must be between 1 and {MAX_PAGE}, not {limit}"),
        ));
    }
    Ok(limit)
}

/// The page asked for: its size and, after the first page, the `seq` it starts below.
pub(crate) fn page(
    asked: Option<u32>,
    cursor: Option<&str>,
) -> Result<(u32, Option<i64>), Problem> {
    Ok((limit(asked)?, cursor.map(parse_cursor).transpose()?))
}

/// The cursor of a page ending at `seq`: opaque to clients.
fn cursor(seq: i64) -> String {
    format!("c{seq:x}")
}

fn parse_cursor(raw: &str) -> Result<i64, Problem> {
    raw.strip_prefix('c')
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .filter(|seq| *seq > 0)
        .ok_or_else(|| {
            crate::input::bad_request(
                "invalid_cursor",
                format!("{raw:?} is not a cursor this API gave"),
            )
        })
}

/// The cursor of the next page after `rows` (a full page of `limit`), or none on the last.
pub(crate) fn next_cursor<T>(rows: &[T], limit: u32, seq: impl Fn(&T) -> i64) -> Option<String> {
    (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| cursor(seq(r))))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        assert_eq!(parse_cursor(&cursor(42)).ok(), Some(42));
        assert_eq!(parse_cursor(&cursor(i64::MAX)).ok(), Some(i64::MAX));
        for bad in ["", "c", "42", "c-1", "c0", "czz", "d2a"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_full_page_has_a_next_one() {
        assert_eq!(next_cursor(&[5i64, 3], 2, |s| *s), Some(cursor(3)));
        assert_eq!(next_cursor(&[5i64], 2, |s| *s), None);
        assert_eq!(limit(None).ok(), Some(DEFAULT_PAGE));
        assert!(limit(Some(0)).is_err() && limit(Some(MAX_PAGE + 1)).is_err());
    }
}
