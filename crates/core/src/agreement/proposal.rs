//! A buyer's proposal, validated field by field: each refusal names its field and what is
//! accepted, and a valid proposal carries its exact amounts.

use alloy::primitives::{Address, U256};
use serde_json::Value;

use super::{
    LifecycleCode as C, LifecycleError,
    terms::{self, FeeSchedule},
};

named_enum! {
    /// Payment rails.
    pub enum Rail {
        /// A stablecoin on the escrow's chain.
        Stablecoin = "stablecoin",
    }
}

named_enum! {
    /// Payment providers of the stablecoin rail.
    pub enum PaymentProvider {
        /// HTTP 402-style agent payments, settled through the escrow.
        X402 = "x402",
    }
}

named_enum! {
    /// How an agreement settles.
    pub enum SettlementModel {
        /// Both parties' funds and claims through the on-chain escrow.
        BilateralEscrow = "bilateral_escrow",
    }
}

named_enum! {
    /// The activation package's version.
    pub enum ActivationVersion {
        /// EIP-3009 (or permit) authorizations of the deposit and the fee, relayed.
        V2 = "v2",
    }
}

/// Bounds of the optional fields, in seconds.
pub const CLOSE_WINDOW: (u32, u32) = (60, 30 * 86_400);
/// The close window when none is given.
pub const DEFAULT_CLOSE_WINDOW: u32 = 3_600;
/// Bounds of `expires_in_seconds`.
pub const EXPIRES_IN: (u64, u64) = (300, 365 * 86_400);
/// The lifetime when none is given: a week.
pub const DEFAULT_EXPIRES_IN: u64 = 7 * 86_400;
/// The largest metadata object, serialized.
pub const MAX_METADATA_BYTES: usize = 4_096;

/// A proposal as posted (numbers signed, so that a negative one gets its own code).
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    /// The seller agent's id.
    pub seller_agent_id: &'a str,
    /// The service bought.
    pub service_id: &'a str,
    /// How many units.
    pub quantity: i64,
    /// What a unit is.
    pub unit: &'a str,
    /// The price of one unit, in cents.
    pub price_per_unit_cents: i64,
    /// `payment_method.rail`.
    pub rail: &'a str,
    /// `payment_method.provider`.
    pub provider: &'a str,
    /// `settlement_model`.
    pub settlement_model: &'a str,
    /// `activation_version`.
    pub activation_version: &'a str,
    /// The buyer's wallet, as the buyer states it.
    pub buyer_wallet_address: &'a str,
    /// Seconds the seller has to claim after a close.
    pub close_window_seconds: Option<i64>,
    /// Seconds from now until the terms expire (the proposal must be accepted and activated
    /// before then).
    pub expires_in_seconds: Option<i64>,
    /// The buyer's own data, kept with the agreement.
    pub metadata: Option<&'a Value>,
}

/// The agents of a proposal, as registered.
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    /// The buyer agent's id and wallet.
    pub buyer: (&'a str, Address),
    /// The seller agent's id and wallet (none: no such agent).
    pub seller: Option<(&'a str, Address)>,
}

/// A valid proposal with its exact amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The buyer's wallet.
    pub buyer_wallet: Address,
    /// The seller's wallet when proposed.
    pub seller_wallet: Address,
    /// The service.
    pub service_id: String,
    /// Units.
    pub quantity: u64,
    /// What a unit is.
    pub unit: String,
    /// Price per unit in cents.
    pub price_per_unit_cents: u64,
    /// The rail.
    pub rail: Rail,
    /// The provider.
    pub provider: PaymentProvider,
    /// The settlement model.
    pub settlement_model: SettlementModel,
    /// The activation version.
    pub activation_version: ActivationVersion,
    /// Seconds the seller has to claim after a close.
    pub close_window: u32,
    /// Seconds until the terms expire.
    pub expires_in: u64,
    /// The buyer's metadata (an object; empty when none).
    pub metadata: Value,
    /// `quantity × price` in token base units: the escrowed `maxAmount`.
    pub max_amount: U256,
    /// The platform fee on it.
    pub infra_fee: U256,
}

fn invalid(code: C, detail: impl Into<String>) -> LifecycleError {
    LifecycleError::new(code, detail)
}

/// `raw` as one of `E`'s spellings, or `code` listing them.
fn one_of<E: Copy + std::str::FromStr>(
    raw: &str,
    field: &str,
    all: &[E],
    name: fn(E) -> &'static str,
    code: C,
) -> Result<E, LifecycleError> {
    raw.parse().map_err(|_| {
        let supported: Vec<&str> = all.iter().map(|e| name(*e)).collect();
        invalid(
            code,
            format!(
                "{field} {raw:?} is not supported; supported: {}",
                supported.join(", ")
            ),
        )
    })
}

/// Whether `raw` is 1 to `max` characters of letters, digits and `_ . : / -`.
fn token_like(raw: &str, max: usize) -> bool {
    !raw.is_empty()
        && raw.len() <= max
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b))
}

fn positive(raw: i64, field: &str, code: C) -> Result<u64, LifecycleError> {
    u64::try_from(raw).ok().filter(|v| *v > 0).ok_or_else(|| {
        invalid(
            code,
            format!("{field} must be a positive whole number, not {raw}"),
        )
    })
}

fn within<T: PartialOrd + Copy + std::fmt::Display + TryFrom<i64>>(
    raw: Option<i64>,
    default: T,
    (low, high): (T, T),
    field: &str,
    code: C,
) -> Result<T, LifecycleError> {
    let Some(raw) = raw else { return Ok(default) };
    T::try_from(raw)
        .ok()
        .filter(|v| *v >= low && *v <= high)
        .ok_or_else(|| {
            invalid(
                code,
                format!("{field} must be between {low} and {high}, not {raw}"),
            )
        })
}

/// Validates `draft` posted by `parties.buyer`, with the amounts in a token of `decimals`
/// decimals and the fee of `fees`.
pub fn validate(
    draft: &Draft<'_>,
    parties: Parties<'_>,
    decimals: u8,
    fees: FeeSchedule,
) -> Result<Proposal, LifecycleError> {
    let (buyer_id, buyer_wallet) = parties.buyer;
    let Some((seller_id, seller_wallet)) = parties.seller else {
        return Err(invalid(
            C::UnknownSeller,
            format!("no agent {:?} exists", draft.seller_agent_id),
        ));
    };
    if seller_id == buyer_id || seller_wallet == buyer_wallet {
        return Err(invalid(
            C::SellerIsBuyer,
            "the seller must be another agent, with another wallet, than the buyer",
        ));
    }
    if !token_like(draft.service_id, 128) {
        return Err(invalid(
            C::InvalidField,
            "service_id must be 1 to 128 letters, digits or _ . : / -",
        ));
    }
    if !token_like(draft.unit, 64) {
        return Err(invalid(
            C::InvalidField,
            "unit must be 1 to 64 letters, digits or _ . : / -",
        ));
    }
    let quantity = positive(draft.quantity, "quantity", C::InvalidQuantity)?;
    let price = positive(
        draft.price_per_unit_cents,
        "price_per_unit_cents",
        C::InvalidPrice,
    )?;
    let rail = one_of(
        draft.rail,
        "payment_method.rail",
        Rail::ALL,
        Rail::as_str,
        C::UnsupportedRail,
    )?;
    let provider = one_of(
        draft.provider,
        "payment_method.provider",
        PaymentProvider::ALL,
        PaymentProvider::as_str,
        C::UnsupportedProvider,
    )?;
    let settlement_model = one_of(
        draft.settlement_model,
        "settlement_model",
        SettlementModel::ALL,
        SettlementModel::as_str,
        C::UnsupportedSettlementModel,
    )?;
    let activation_version = one_of(
        draft.activation_version,
        "activation_version",
        ActivationVersion::ALL,
        ActivationVersion::as_str,
        C::UnsupportedActivationVersion,
    )?;
    let stated: Address = draft.buyer_wallet_address.parse().map_err(|_| {
        invalid(
            C::BuyerWalletMismatch,
            format!(
                "buyer_wallet_address {:?} is not an address",
                draft.buyer_wallet_address
            ),
        )
    })?;
    if stated != buyer_wallet {
        return Err(invalid(
            C::BuyerWalletMismatch,
            format!(
                "buyer_wallet_address {stated} is not the wallet registered for agent {buyer_id}"
            ),
        ));
    }
    let close_window = within(
        draft.close_window_seconds,
        DEFAULT_CLOSE_WINDOW,
        CLOSE_WINDOW,
        "close_window_seconds",
        C::InvalidCloseWindow,
    )?;
    let expires_in = within(
        draft.expires_in_seconds,
        DEFAULT_EXPIRES_IN,
        EXPIRES_IN,
        "expires_in_seconds",
        C::InvalidExpiry,
    )?;
    let metadata = match draft.metadata {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(object @ Value::Object(_)) => {
            if object.to_string().len() > MAX_METADATA_BYTES {
                return Err(invalid(
                    C::InvalidMetadata,
                    format!("metadata is larger than {MAX_METADATA_BYTES} bytes"),
                ));
            }
            object.clone()
        }
        Some(_) => {
            return Err(invalid(
                C::InvalidMetadata,
                "metadata must be a JSON object",
            ));
        }
    };
    let max_amount = terms::amount(quantity, price, decimals)?;
    Ok(Proposal {
        buyer_wallet,
        seller_wallet,
        service_id: draft.service_id.to_owned(),
        quantity,
        unit: draft.unit.to_owned(),
        price_per_unit_cents: price,
        rail,
        provider,
        settlement_model,
        activation_version,
        close_window,
        expires_in,
        metadata,
        infra_fee: fees.fee(max_amount),
        max_amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUYER: Address = Address::repeat_byte(0xb1);
    const SELLER: Address = Address::repeat_byte(0x5e);

    fn draft() -> Draft<'static> {
        Draft {
            seller_agent_id: "seller-agent",
            service_id: "svc_abc123",
            quantity: 100,
            unit: "api_calls",
            price_per_unit_cents: 10,
            rail: "stablecoin",
            provider: "x402",
            settlement_model: "bilateral_escrow",
            activation_version: "v2",
            buyer_wallet_address: "0xb1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1",
            close_window_seconds: None,
            expires_in_seconds: None,
            metadata: None,
        }
    }

    fn parties() -> Parties<'static> {
        Parties {
            buyer: ("buyer-agent", BUYER),
            seller: Some(("seller-agent", SELLER)),
        }
    }

    fn code(d: Draft<'_>) -> C {
        validate(&d, parties(), 6, FeeSchedule::LOCAL)
            .unwrap_err()
            .code
    }

    #[test]
    fn the_references_example_is_ten_dollars_with_a_one_percent_fee() {
        let p = validate(&draft(), parties(), 6, FeeSchedule::LOCAL).unwrap();
        assert_eq!(p.max_amount, U256::from(10_000_000u64));
        assert_eq!(p.infra_fee, U256::from(100_000u64));
        assert_eq!((p.buyer_wallet, p.seller_wallet), (BUYER, SELLER));
        assert_eq!(p.close_window, DEFAULT_CLOSE_WINDOW);
        assert_eq!(p.expires_in, DEFAULT_EXPIRES_IN);
        assert_eq!(p.metadata, serde_json::json!({}));
        assert_eq!(p.rail, Rail::Stablecoin);
    }

    #[test]
    fn each_bad_field_has_its_code() {
        assert_eq!(
            code(Draft {
                quantity: 0,
                ..draft()
            }),
            C::InvalidQuantity
        );
        assert_eq!(
            code(Draft {
                quantity: -5,
                ..draft()
            }),
            C::InvalidQuantity
        );
        assert_eq!(
            code(Draft {
                price_per_unit_cents: 0,
                ..draft()
            }),
            C::InvalidPrice
        );
        assert_eq!(
            code(Draft {
                price_per_unit_cents: -1,
                ..draft()
            }),
            C::InvalidPrice
        );
        assert_eq!(
            code(Draft {
                quantity: i64::MAX,
                price_per_unit_cents: i64::MAX,
                ..draft()
            }),
            C::AmountOverflow
        );
        assert_eq!(
            code(Draft {
                rail: "card",
                ..draft()
            }),
            C::UnsupportedRail
        );
        assert_eq!(
            code(Draft {
                provider: "stripe",
                ..draft()
            }),
            C::UnsupportedProvider
        );
        assert_eq!(
            code(Draft {
                settlement_model: "prepaid",
                ..draft()
            }),
            C::UnsupportedSettlementModel
        );
        assert_eq!(
            code(Draft {
                activation_version: "v1",
                ..draft()
            }),
            C::UnsupportedActivationVersion
        );
        assert_eq!(
            code(Draft {
                buyer_wallet_address: "0xBuyerWallet...",
                ..draft()
            }),
            C::BuyerWalletMismatch
        );
        assert_eq!(
            code(Draft {
                buyer_wallet_address: "0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e",
                ..draft()
            }),
            C::BuyerWalletMismatch
        );
        assert_eq!(
            code(Draft {
                service_id: "",
                ..draft()
            }),
            C::InvalidField
        );
        assert_eq!(
            code(Draft {
                unit: "api calls",
                ..draft()
            }),
            C::InvalidField
        );
        assert_eq!(
            code(Draft {
                close_window_seconds: Some(59),
                ..draft()
            }),
            C::InvalidCloseWindow
        );
        assert_eq!(
            code(Draft {
                close_window_seconds: Some(-1),
                ..draft()
            }),
            C::InvalidCloseWindow
        );
        assert_eq!(
            code(Draft {
                expires_in_seconds: Some(10),
                ..draft()
            }),
            C::InvalidExpiry
        );
        let list = serde_json::json!([1]);
        assert_eq!(
            code(Draft {
                metadata: Some(&list),
                ..draft()
            }),
            C::InvalidMetadata
        );
        let big = serde_json::json!({ "x": "y".repeat(MAX_METADATA_BYTES) });
        assert_eq!(
            code(Draft {
                metadata: Some(&big),
                ..draft()
            }),
            C::InvalidMetadata
        );
    }

    #[test]
    fn an_unsupported_value_names_what_is_supported() {
        let err = validate(
            &Draft {
                rail: "card",
                ..draft()
            },
            parties(),
            6,
            FeeSchedule::LOCAL,
        )
        .unwrap_err();
        assert!(
            err.detail.contains("supported: stablecoin"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn the_seller_must_exist_and_be_someone_else() {
        let unknown = Parties {
            seller: None,
            ..parties()
        };
        assert_eq!(
            validate(&draft(), unknown, 6, FeeSchedule::LOCAL)
                .unwrap_err()
                .code,
            C::UnknownSeller
        );
        let same_agent = Parties {
            seller: Some(("buyer-agent", SELLER)),
            ..parties()
        };
        assert_eq!(
            validate(&draft(), same_agent, 6, FeeSchedule::LOCAL)
                .unwrap_err()
                .code,
            C::SellerIsBuyer
        );
        let same_wallet = Parties {
            seller: Some(("seller-agent", BUYER)),
            ..parties()
        };
        assert_eq!(
            validate(&draft(), same_wallet, 6, FeeSchedule::LOCAL)
                .unwrap_err()
                .code,
            C::SellerIsBuyer
        );
    }
}
