//! EIP-712 typed data as JSON (`eth_signTypedData_v4`), so that a client signs exactly what the
//! escrow will verify, with the digest it hashes to.

use alloy::{
    primitives::{Address, B256, U256},
    sol_types::{Eip712Domain, SolStruct},
};
use pactum_bindings::{
    Agreement,
    eip712::{
        Activation, AgentRegistration, BuyerWithdraw, InitiateClose, Permit, Receipt,
        ReceiveWithAuthorization, SellerClaim, Voucher,
    },
};
use serde_json::{Value, json};

fn domain_json(domain: &Eip712Domain) -> Value {
    json!({
        "name": domain.name.as_deref().unwrap_or_default(),
        "version": domain.version.as_deref().unwrap_or_default(),
        "chainId": domain.chain_id.map(|c| c.to::<u64>()),
        "verifyingContract": domain.verifying_contract.map(|a| a.to_string()),
    })
}

/// Every struct type of `S` (itself, then the structs it contains), as `eth_signTypedData_v4`
/// lists them: `eip712_encode_type` is `Name(type name,...)` followed by each referenced struct's
/// own `Name(...)`.
fn struct_types<S: SolStruct>() -> serde_json::Map<String, Value> {
    let encoded = S::eip712_encode_type();
    let mut types = serde_json::Map::new();
    let mut rest = encoded.as_ref();
    while let Some((name, after)) = rest.split_once('(') {
        let Some((inner, next)) = after.split_once(')') else {
            break;
        };
        let fields = inner
            .split(',')
            .filter_map(|f| f.split_once(' '))
            .map(|(ty, field)| json!({ "name": field, "type": ty }))
            .collect();
        types.insert(name.to_owned(), Value::Array(fields));
        rest = next;
    }
    types
}

fn typed<S: SolStruct>(domain: &Eip712Domain, message: Value) -> Value {
    let mut types = struct_types::<S>();
    types.insert(
        "EIP712Domain".to_owned(),
        json!([
            { "name": "name", "type": "string" },
            { "name": "version", "type": "string" },
            { "name": "chainId", "type": "uint256" },
            { "name": "verifyingContract", "type": "address" },
        ]),
    );
    json!({
        "types": types,
        "primaryType": S::NAME,
        "domain": domain_json(domain),
        "message": message,
    })
}

/// `InitiateClose` for `party`.
pub fn initiate_close(
    domain: &Eip712Domain,
    id: B256,
    party: Address,
    deadline: u64,
) -> (Value, B256) {
    let message = InitiateClose {
        agreementId: id,
        party,
        deadline: U256::from(deadline),
    };
    let json = json!({ "agreementId": id.to_string(), "party": party.to_string(), "deadline": deadline.to_string() });
    (
        typed::<InitiateClose>(domain, json),
        message.eip712_signing_hash(domain),
    )
}

/// `SellerClaim` of `amount` to `recipient`.
pub fn seller_claim(
    domain: &Eip712Domain,
    id: B256,
    amount: U256,
    recipient: Address,
    deadline: u64,
) -> (Value, B256) {
    let message = SellerClaim {
        agreementId: id,
        amount,
        recipient,
        deadline: U256::from(deadline),
    };
    let json = json!({
        "agreementId": id.to_string(),
        "amount": amount.to_string(),
        "recipient": recipient.to_string(),
        "deadline": deadline.to_string(),
    });
    (
        typed::<SellerClaim>(domain, json),
        message.eip712_signing_hash(domain),
    )
}

/// `BuyerWithdraw` to `recipient`.
pub fn buyer_withdraw(
    domain: &Eip712Domain,
    id: B256,
    recipient: Address,
    deadline: u64,
) -> (Value, B256) {
    let message = BuyerWithdraw {
        agreementId: id,
        recipient,
        deadline: U256::from(deadline),
    };
    let json = json!({
        "agreementId": id.to_string(),
        "recipient": recipient.to_string(),
        "deadline": deadline.to_string(),
    });
    (
        typed::<BuyerWithdraw>(domain, json),
        message.eip712_signing_hash(domain),
    )
}

/// An EIP-3009 `ReceiveWithAuthorization` under the token's domain (the buyer's deposit or fee
/// authorization).
pub fn receive_with_authorization(
    token_domain: &Eip712Domain,
    message: &ReceiveWithAuthorization,
) -> (Value, B256) {
    let json = json!({
        "from": message.from.to_string(),
        "to": message.to.to_string(),
        "value": message.value.to_string(),
        "validAfter": message.validAfter.to_string(),
        "validBefore": message.validBefore.to_string(),
        "nonce": message.nonce.to_string(),
    });
    (
        typed::<ReceiveWithAuthorization>(token_domain, json),
        message.eip712_signing_hash(token_domain),
    )
}

/// The wallet's `AgentRegistration` of agent `agent` of `owner`, usable until `deadline`.
pub fn agent_registration(
    domain: &Eip712Domain,
    owner: &str,
    agent: &str,
    wallet: Address,
    deadline: u64,
) -> (Value, B256) {
    let message = AgentRegistration {
        owner: owner.to_owned(),
        agent: agent.to_owned(),
        wallet,
        deadline: U256::from(deadline),
    };
    let json = json!({
        "owner": owner, "agent": agent, "wallet": wallet.to_string(), "deadline": deadline.to_string(),
    });
    (
        typed::<AgentRegistration>(domain, json),
        message.eip712_signing_hash(domain),
    )
}

/// A `Receipt`, as typed data any EIP-712 library hashes to the digest the service signed.
pub fn receipt(domain: &Eip712Domain, r: &Receipt) -> (Value, B256) {
    let json = json!({
        "receiptId": r.receiptId,
        "agreementId": r.agreementId.to_string(),
        "apiAgreementId": r.apiAgreementId,
        "kind": r.kind,
        "payer": r.payer.to_string(),
        "payee": r.payee.to_string(),
        "token": r.token.to_string(),
        "amount": r.amount.to_string(),
        "chainId": r.chainId.to_string(),
        "emitter": r.emitter.to_string(),
        "txHash": r.txHash.to_string(),
        "logIndex": r.logIndex.to_string(),
        "blockNumber": r.blockNumber.to_string(),
        "blockHash": r.blockHash.to_string(),
        "blockTime": r.blockTime.to_string(),
    });
    (
        typed::<Receipt>(domain, json),
        r.eip712_signing_hash(domain),
    )
}

/// The buyer's `Voucher` for a cumulative `amount` of agreement `id`.
pub fn voucher(domain: &Eip712Domain, id: B256, amount: U256) -> (Value, B256) {
    let message = Voucher {
        agreementId: id,
        cumulativeAmount: amount,
    };
    let json = json!({ "agreementId": id.to_string(), "cumulativeAmount": amount.to_string() });
    (
        typed::<Voucher>(domain, json),
        message.eip712_signing_hash(domain),
    )
}

/// The buyer's `Activation` of `terms` until `deadline` (the permit path's consent, verified by
/// the escrow).
pub fn activation(domain: &Eip712Domain, terms: &Agreement, deadline: u64) -> (Value, B256) {
    let message = Activation {
        agreement: terms.clone(),
        deadline: U256::from(deadline),
    };
    let json = json!({ "agreement": terms_json(terms), "deadline": deadline.to_string() });
    (
        typed::<Activation>(domain, json),
        message.eip712_signing_hash(domain),
    )
}

/// An EIP-2612 `Permit` under the token's domain.
pub fn permit(token_domain: &Eip712Domain, message: &Permit) -> (Value, B256) {
    let json = json!({
        "owner": message.owner.to_string(),
        "spender": message.spender.to_string(),
        "value": message.value.to_string(),
        "nonce": message.nonce.to_string(),
        "deadline": message.deadline.to_string(),
    });
    (
        typed::<Permit>(token_domain, json),
        message.eip712_signing_hash(token_domain),
    )
}

/// The terms as JSON (amounts as decimal strings).
pub fn terms_json(terms: &Agreement) -> Value {
    json!({
        "buyer": terms.buyer.to_string(),
        "seller": terms.seller.to_string(),
        "token": terms.token.to_string(),
        "maxAmount": terms.maxAmount.to_string(),
        "infraFee": terms.infraFee.to_string(),
        "expiry": terms.expiry.to_string(),
        "closeWindow": terms.closeWindow.to_string(),
        "salt": terms.salt.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use pactum_bindings::eip712;

    use super::*;
    use crate::escrow::rules::tests::{BUYER, ESCROW, SELLER, terms};

    #[test]
    fn a_nested_struct_lists_both_types() {
        let domain = eip712::escrow_domain(31_337, ESCROW);
        let terms = Agreement {
            buyer: SELLER,
            seller: ESCROW,
            token: SELLER,
            maxAmount: U256::from(10),
            infraFee: U256::from(1),
            expiry: 99,
            closeWindow: 60,
            salt: B256::repeat_byte(3),
        };
        let (typed, digest) = activation(&domain, &terms, 1_000);
        assert_eq!(typed["primaryType"], "Activation");
        assert_eq!(typed["types"]["Activation"][0]["type"], "Agreement");
        assert_eq!(
            typed["types"]["Agreement"].as_array().map(Vec::len),
            Some(8)
        );
        assert_eq!(typed["message"]["agreement"]["maxAmount"], "10");
        assert_eq!(
            digest,
            Activation {
                agreement: terms,
                deadline: U256::from(1_000)
            }
            .eip712_signing_hash(&domain)
        );
    }

    #[test]
    fn the_json_names_every_field_of_the_struct_in_order() {
        let domain = eip712::escrow_domain(31_337, ESCROW);
        let id = B256::repeat_byte(9);
        let (typed, digest) = seller_claim(&domain, id, U256::from(5), SELLER, 77);
        assert_eq!(typed["primaryType"], "SellerClaim");
        let fields: Vec<(String, String)> = typed["types"]["SellerClaim"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["type"].as_str().unwrap().to_owned(),
                    f["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let encoded: Vec<String> = fields.iter().map(|(t, n)| format!("{t} {n}")).collect();
        assert_eq!(
            format!("SellerClaim({})", encoded.join(",")),
            SellerClaim::eip712_encode_type()
        );
        for (_, name) in &fields {
            assert!(typed["message"].get(name).is_some(), "{name} missing");
        }
        assert_eq!(typed["message"]["amount"], "5");
        assert_eq!(typed["message"]["deadline"], "77");
        assert_eq!(
            digest,
            SellerClaim {
                agreementId: id,
                amount: U256::from(5),
                recipient: SELLER,
                deadline: U256::from(77),
            }
            .eip712_signing_hash(&domain)
        );
    }

    #[test]
    fn the_domain_is_the_escrows() {
        let domain = eip712::escrow_domain(31_337, ESCROW);
        let (typed, digest) = initiate_close(&domain, B256::ZERO, BUYER, 1);
        assert_eq!(typed["domain"]["chainId"], 31_337);
        assert_eq!(typed["domain"]["verifyingContract"], ESCROW.to_string());
        assert_eq!(typed["domain"]["name"], eip712::ESCROW_DOMAIN_NAME);
        let (_, other) = initiate_close(&eip712::escrow_domain(1, ESCROW), B256::ZERO, BUYER, 1);
        assert_ne!(digest, other);
        let (typed, _) = buyer_withdraw(&domain, B256::ZERO, BUYER, 1);
        assert_eq!(typed["types"]["BuyerWithdraw"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn terms_are_decimal_strings() {
        let json = terms_json(&terms());
        assert_eq!(json["maxAmount"], "40000000");
        assert_eq!(json["closeWindow"], "600");
        assert_eq!(json["buyer"], BUYER.to_string());
    }
}
