//! ECDSA recovery exactly as the escrow (OpenZeppelin's `ECDSA.tryRecover`) does it, so that a
//! signature the relayer accepts off-chain is one the contract accepts on chain.

use alloy::{
    primitives::{Address, B256, b256},
    signers::Signature,
};

/// Half the secp256k1 group order: OpenZeppelin's ECDSA refuses signatures with a larger `s`.
pub const HALF_ORDER: B256 =
    b256!("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");

/// The signer of `digest`, for a 65-byte `r ‖ s ‖ v` signature with `v` 27 or 28 and `s` in the
/// lower half of the order; `None` for anything else (which the escrow would then try as an
/// ERC-1271 signature, if the signer has code).
pub fn recover(digest: B256, signature: &[u8]) -> Option<Address> {
    if signature.len() != 65 || !matches!(signature[64], 27 | 28) {
        return None;
    }
    if B256::from_slice(&signature[32..64]) > HALF_ORDER {
        return None;
    }
    let sig = Signature::from_raw(signature).ok()?;
    sig.recover_address_from_prehash(&digest).ok()
}

/// Whether an account's code is an EIP-7702 delegation (`0xef0100 ‖ address`): such an account
/// signs with its key, like an account without code.
pub fn is_delegation(code: &[u8]) -> bool {
    code.len() == 23 && code.starts_with(&[0xef, 0x01, 0x00])
}

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{U256, keccak256},
        signers::{SignerSync, local::PrivateKeySigner},
    };

    use super::*;

    fn signed(digest: B256) -> (PrivateKeySigner, Vec<u8>) {
        let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).unwrap();
        let signature = key.sign_hash_sync(&digest).unwrap();
        (key, signature.as_bytes().to_vec())
    }

    #[test]
    fn recovers_a_canonical_signature() {
        let digest = keccak256("message");
        let (key, sig) = signed(digest);
        assert!(matches!(sig[64], 27 | 28));
        assert_eq!(recover(digest, &sig), Some(key.address()));
        assert_ne!(recover(keccak256("other"), &sig), Some(key.address()));
    }

    #[test]
    fn refuses_the_malleable_twin() {
        // (r, n - s, v ^ 1) recovers the same key in plain secp256k1; the escrow refuses it.
        let digest = keccak256("message");
        let (_, mut sig) = signed(digest);
        let n = U256::from_be_bytes(HALF_ORDER.0) * U256::from(2) + U256::from(1);
        let s = U256::from_be_slice(&sig[32..64]);
        sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        sig[64] = if sig[64] == 27 { 28 } else { 27 };
        assert_eq!(recover(digest, &sig), None);
    }

    #[test]
    fn refuses_other_lengths_and_v_values() {
        let digest = keccak256("message");
        let (_, sig) = signed(digest);
        assert_eq!(recover(digest, &sig[..64]), None);
        assert_eq!(recover(digest, &[sig.clone(), vec![0]].concat()), None);
        for v in [0u8, 1, 29, 35] {
            let mut other = sig.clone();
            other[64] = v;
            assert_eq!(recover(digest, &other), None, "v = {v}");
        }
        assert_eq!(recover(digest, &[]), None);
    }

    #[test]
    fn a_delegation_is_exactly_23_bytes_with_its_prefix() {
        let mut code = vec![0xef, 0x01, 0x00];
        code.extend([0x11; 20]);
        assert!(is_delegation(&code));
        assert!(!is_delegation(&code[..22]));
        code[2] = 0x01;
        assert!(!is_delegation(&code));
        assert!(!is_delegation(&[]));
    }
}
