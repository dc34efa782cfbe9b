//! The tokens the operator vouches for. An escrow holds whatever token its terms name; one in a
//! worthless token looks exactly like a paid one. The operator lists the tokens it trusts
//! (`chain.tokens`), every view marks an agreement in any other token, and the relayer does not
//! sponsor it.

use alloy::primitives::Address;

use crate::{Refusal, RefusalCode};

/// Which agreement tokens are trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustedTokens {
    /// No list was configured: every token is taken at face value (libraries and tests; the
    /// `pactum` services always configure a list).
    #[default]
    Any,
    /// Only these (an empty list trusts none).
    Only(Vec<Address>),
}

impl TrustedTokens {
    /// Whether an agreement in `token` is one the operator vouches for.
    pub fn trusts(&self, token: Address) -> bool {
        match self {
            Self::Any => true,
            Self::Only(tokens) => tokens.contains(&token),
        }
    }

    /// `untrusted_token` unless `token` is trusted.
    pub fn check(&self, token: Address) -> Result<(), Refusal> {
        if self.trusts(token) {
            return Ok(());
        }
        Err(Refusal::new(
            RefusalCode::UntrustedToken,
            format!(
                "the agreement's token {token} is not one this operator vouches for (chain.tokens): \
                 its escrow may hold nothing of value, and it is not sponsored"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_tokens_are_trusted_once_a_list_exists() {
        let (usdc, junk) = (Address::repeat_byte(1), Address::repeat_byte(2));
        assert!(TrustedTokens::Any.trusts(junk));
        let listed = TrustedTokens::Only(vec![usdc]);
        assert!(listed.trusts(usdc));
        assert!(!listed.trusts(junk));
        assert_eq!(
            listed.check(junk).unwrap_err().code,
            RefusalCode::UntrustedToken
        );
        assert!(listed.check(usdc).is_ok());
        assert!(
            !TrustedTokens::Only(Vec::new()).trusts(usdc),
            "an empty list trusts none"
        );
    }
}
