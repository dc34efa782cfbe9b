//! Errors as RFC 9457 problem details.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem response: a standard status code, a stable machine-readable `code`, a human
/// `title` and `detail`. Clients branch on `code`, never on the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI identifying the problem type (`urn:pactum:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// When what was refused becomes possible (unix seconds), if only time stands in the way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_at: Option<u64>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}
