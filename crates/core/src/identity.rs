//! Owners' agents: which agent ids, names and key labels are accepted, and when a wallet's proof
//! of control ([`pactum_bindings::eip712::AgentRegistration`], signed by the wallet) may be
//! used. The signature itself is checked by the API (ECDSA here, ERC-1271 through the node).

/// The longest a registration proof may stay usable: its deadline is at most this far ahead.
pub const MAX_PROOF_WINDOW_SECS: u64 = 3_600;

named_enum! {
    /// Why an identity request is refused. Each maps to one HTTP status in the API.
    pub enum IdentityCode {
        /// The agent id is not 3 to 64 letters, digits, `_`, `.` or `-`, starting with a letter
        /// or digit.
        InvalidAgentId = "invalid_agent_id",
        /// The name is empty, longer than 100 characters, or has control characters.
        InvalidName = "invalid_name",
        /// A key label is longer than 100 characters or has control characters.
        InvalidLabel = "invalid_label",
        /// The proof's deadline has passed.
        WalletProofExpired = "wallet_proof_expired",
        /// The proof's deadline is further ahead than [`MAX_PROOF_WINDOW_SECS`].
        WalletProofDeadlineTooFar = "wallet_proof_deadline_too_far",
        /// The signature is not the wallet's over this registration (ECDSA or ERC-1271).
        InvalidWalletProof = "invalid_wallet_proof",
        /// Another agent has this id.
        AgentIdTaken = "agent_id_taken",
        /// Another agent is registered with this wallet.
        WalletAlreadyRegistered = "wallet_already_registered",
        /// No such agent of this owner (another owner's answers the same).
        AgentNotFound = "agent_not_found",
        /// Only the agent's owner may do this.
        OwnerOnly = "owner_only",
    }
}

impl IdentityCode {
    /// A short human title (the problem's `title`).
    pub const fn title(self) -> &'static str {
        match self {
            Self::InvalidAgentId => "Invalid agent id",
            Self::InvalidName => "Invalid name",
            Self::InvalidLabel => "Invalid label",
            Self::WalletProofExpired => "Wallet proof expired",
            Self::WalletProofDeadlineTooFar => "Wallet proof deadline too far",
            Self::InvalidWalletProof => "Invalid wallet proof",
            Self::AgentIdTaken => "Agent id taken",
            Self::WalletAlreadyRegistered => "Wallet already registered",
            Self::AgentNotFound => "Agent not found",
            Self::OwnerOnly => "Owner only",
        }
    }
}

/// A refused identity request: its code and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct IdentityError {
    /// The stable code.
    pub code: IdentityCode,
    /// What exactly was wrong.
    pub detail: String,
}

impl IdentityError {
    /// An error with `code` and `detail`.
    pub fn new(code: IdentityCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

/// An agent id as chosen by its owner: 3 to 64 of `A-Z a-z 0-9 _ . -`, starting with a letter
/// or digit (it appears in URLs and in the signed registration).
pub fn agent_id(raw: &str) -> Result<&str, IdentityError> {
    let valid = (3..=64).contains(&raw.len())
        && raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(raw)
    } else {
        Err(IdentityError::new(
            IdentityCode::InvalidAgentId,
            format!(
                "agent id {raw:?} must be 3 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        ))
    }
}

fn text(raw: &str, max: usize) -> Option<String> {
    let trimmed = raw.trim();
    (trimmed.chars().count() <= max && !trimmed.chars().any(char::is_control))
        .then(|| trimmed.to_owned())
}

/// An agent's display name: trimmed, 1 to 100 characters, no control characters.
pub fn agent_name(raw: &str) -> Result<String, IdentityError> {
    text(raw, 100).filter(|t| !t.is_empty()).ok_or_else(|| {
        IdentityError::new(
            IdentityCode::InvalidName,
            "name must be 1 to 100 characters without control characters",
        )
    })
}

/// An API key's label: trimmed, at most 100 characters, no control characters.
pub fn key_label(raw: &str) -> Result<String, IdentityError> {
    text(raw, 100).ok_or_else(|| {
        IdentityError::new(
            IdentityCode::InvalidLabel,
            "label must be at most 100 characters without control characters",
        )
    })
}

/// Whether a registration proof with `deadline` may be used at `now` (unix seconds): not past,
/// and not more than [`MAX_PROOF_WINDOW_SECS`] ahead (a proof is for registering now, not a
/// standing permission).
pub fn proof_deadline(deadline: u64, now: u64) -> Result<(), IdentityError> {
    if deadline <= now {
        return Err(IdentityError::new(
            IdentityCode::WalletProofExpired,
            format!("the proof's deadline {deadline} has passed (now {now}); sign a new one"),
        ));
    }
    if deadline - now > MAX_PROOF_WINDOW_SECS {
        return Err(IdentityError::new(
            IdentityCode::WalletProofDeadlineTooFar,
            format!(
                "the proof's deadline {deadline} is more than {MAX_PROOF_WINDOW_SECS} s ahead (now {now})"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_url_and_message_safe() {
        for ok in ["seller-agent", "abc", "a.b_c-9", &"x".repeat(64)] {
            assert_eq!(agent_id(ok), Ok(ok));
        }
        for bad in [
            "ab",
            "-abc",
            ".abc",
            "a b",
            "agent/1",
            "ägent",
            "a\u{0}bc",
            &"x".repeat(65),
        ] {
            assert_eq!(
                agent_id(bad).unwrap_err().code,
                IdentityCode::InvalidAgentId,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_and_labels_are_trimmed_and_bounded() {
        assert_eq!(agent_name("  buyer bot ").unwrap(), "buyer bot");
        assert_eq!(agent_name(&"n".repeat(100)).unwrap().len(), 100);
        for bad in ["", "   ", "line\nbreak", &"n".repeat(101)] {
            assert_eq!(agent_name(bad).unwrap_err().code, IdentityCode::InvalidName);
        }
        assert_eq!(key_label("").unwrap(), "");
        assert_eq!(key_label(" ci ").unwrap(), "ci");
        assert_eq!(key_label("tab\t").unwrap(), "tab");
        assert_eq!(
            key_label("a\u{7}b").unwrap_err().code,
            IdentityCode::InvalidLabel
        );
    }

    #[test]
    fn a_proof_is_usable_only_until_its_deadline_and_not_for_long() {
        let now = 1_800_000_000;
        assert!(proof_deadline(now + 1, now).is_ok());
        assert!(proof_deadline(now + MAX_PROOF_WINDOW_SECS, now).is_ok());
        assert_eq!(
            proof_deadline(now, now).unwrap_err().code,
            IdentityCode::WalletProofExpired
        );
        assert_eq!(
            proof_deadline(now + MAX_PROOF_WINDOW_SECS + 1, now)
                .unwrap_err()
                .code,
            IdentityCode::WalletProofDeadlineTooFar
        );
    }
}
