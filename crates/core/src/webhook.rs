//! Webhooks: what an owner may subscribe to, where deliveries may go, how they are signed, and
//! when they are retried, given up or the endpoint disabled. The delivery itself (HTTP, the
//! queue) is `pactum-webhooks`'; the storage `pactum_db::webhooks`.
//!
//! Signatures follow the Standard Webhooks specification (<https://www.standardwebhooks.com/>):
//! the signed content is `<webhook-id>.<webhook-timestamp>.<body>`, the key the bytes behind a
//! `whsec_` secret's base64, the header `webhook-signature: v1,<base64 HMAC-SHA256>` (one entry
//! per secret in force, space-separated, while a rotated secret overlaps its successor).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::agreement::EventKind;

named_enum! {
    /// What a webhook announces. Every agreement event (`agreement.<kind>` for each history
    /// event kind), every sponsored action's outcome, and every receipt issued.
    pub enum EventType {
        /// The buyer proposed.
        AgreementProposed = "agreement.proposed",
        /// The buyer's owner's policy sent the proposal for approval.
        AgreementApprovalRequested = "agreement.approval_requested",
        /// The buyer's owner approved the proposal.
        AgreementApproved = "agreement.approved",
        /// The buyer's owner rejected the proposal.
        AgreementApprovalRejected = "agreement.approval_rejected",
        /// The seller accepted.
        AgreementAccepted = "agreement.accepted",
        /// The seller rejected.
        AgreementRejected = "agreement.rejected",
        /// The terms expired before acceptance or activation.
        AgreementExpired = "agreement.expired",
        /// The buyer's activation was handed to the relayer.
        AgreementActivationSubmitted = "agreement.activation_submitted",
        /// The activation failed (its reason in the detail).
        AgreementActivationFailed = "agreement.activation_failed",
        /// The escrow's activation was indexed: the activation is confirmed.
        AgreementActivated = "agreement.activated",
        /// A reorg removed indexed on-chain events of the agreement (the correction of earlier
        /// events).
        AgreementReorged = "agreement.reorged",
        /// Cumulative usage was recorded with the buyer's voucher.
        AgreementUsageRecorded = "agreement.usage_recorded",
        /// A party initiated the close.
        AgreementCloseInitiated = "agreement.close_initiated",
        /// The seller claimed.
        AgreementSellerClaimed = "agreement.seller_claimed",
        /// The seller's payout was deferred.
        AgreementPayoutDeferred = "agreement.payout_deferred",
        /// The deferred payout went through.
        AgreementSellerPaid = "agreement.seller_paid",
        /// The buyer withdrew its remainder.
        AgreementBuyerWithdrawn = "agreement.buyer_withdrawn",
        /// Nothing remains in escrow.
        AgreementSettled = "agreement.settled",
        /// A sponsored action was mined.
        SponsoredActionConfirmed = "sponsored_action.confirmed",
        /// A sponsored action will not be mined (its failure code in the data).
        SponsoredActionFailed = "sponsored_action.failed",
        /// A receipt was issued for a final money movement.
        ReceiptIssued = "receipt.issued",
    }
}

impl EventType {
    /// The type announcing an agreement history event of `kind`.
    pub fn of_agreement(kind: EventKind) -> Self {
        use EventKind as K;
        match kind {
            K::Proposed => Self::AgreementProposed,
            K::ApprovalRequested => Self::AgreementApprovalRequested,
            K::Approved => Self::AgreementApproved,
            K::ApprovalRejected => Self::AgreementApprovalRejected,
            K::Accepted => Self::AgreementAccepted,
            K::Rejected => Self::AgreementRejected,
            K::Expired => Self::AgreementExpired,
            K::ActivationSubmitted => Self::AgreementActivationSubmitted,
            K::ActivationFailed => Self::AgreementActivationFailed,
            K::Activated => Self::AgreementActivated,
            K::Reorged => Self::AgreementReorged,
            K::UsageRecorded => Self::AgreementUsageRecorded,
            K::CloseInitiated => Self::AgreementCloseInitiated,
            K::SellerClaimed => Self::AgreementSellerClaimed,
            K::PayoutDeferred => Self::AgreementPayoutDeferred,
            K::SellerPaid => Self::AgreementSellerPaid,
            K::BuyerWithdrawn => Self::AgreementBuyerWithdrawn,
            K::Settled => Self::AgreementSettled,
        }
    }
}

named_enum! {
    /// Why a webhook request is refused.
    pub enum WebhookCode {
        /// The URL is not an absolute `https` URL (or `http` where the operator allows it),
        /// has credentials or a fragment, or is too long.
        InvalidUrl = "invalid_webhook_url",
        /// The URL names an address deliveries may not go to (private, loopback, link-local,
        /// ...), and the operator does not allow those.
        ForbiddenDestination = "forbidden_webhook_destination",
        /// An event type is unknown or listed twice, or the list is empty.
        InvalidEventTypes = "invalid_event_types",
        /// The description is too long or has control characters.
        InvalidDescription = "invalid_description",
        /// The overlap of a secret rotation is out of bounds.
        InvalidOverlap = "invalid_overlap",
        /// The agent has as many endpoints as it may.
        TooManyWebhooks = "too_many_webhooks",
        /// No such endpoint of this agent.
        WebhookNotFound = "webhook_not_found",
        /// No such delivery of this agent's endpoints.
        DeliveryNotFound = "delivery_not_found",
        /// The delivery is not finished (it will be tried again): replay a finished one.
        DeliveryInProgress = "delivery_in_progress",
        /// The endpoint is disabled: enable it before replaying to it.
        WebhookDisabled = "webhook_disabled",
    }
}

impl WebhookCode {
    /// A short human title (the problem's `title`).
    pub const fn title(self) -> &'static str {
        match self {
            Self::InvalidUrl => "Invalid webhook URL",
            Self::ForbiddenDestination => "Forbidden webhook destination",
            Self::InvalidEventTypes => "Invalid event types",
            Self::InvalidDescription => "Invalid description",
            Self::InvalidOverlap => "Invalid overlap",
            Self::TooManyWebhooks => "Too many webhooks",
            Self::WebhookNotFound => "Webhook not found",
            Self::DeliveryNotFound => "Delivery not found",
            Self::DeliveryInProgress => "Delivery in progress",
            Self::WebhookDisabled => "Webhook disabled",
        }
    }
}

/// A refused webhook request: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct WebhookError {
    /// The stable code.
    pub code: WebhookCode,
    /// What exactly was wrong.
    pub detail: String,
}

impl WebhookError {
    /// An error with `code` and `detail`.
    pub fn new(code: WebhookCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

named_enum! {
    /// Whether an endpoint receives deliveries.
    pub enum EndpointStatus {
        /// Deliveries are made.
        Enabled = "enabled",
        /// No deliveries are made (by its owner, or after failing for days).
        Disabled = "disabled",
    }
}

named_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Waiting for its next attempt (or being attempted).
        Pending = "pending",
        /// The endpoint answered 2xx.
        Succeeded = "succeeded",
        /// Every attempt of the schedule failed (a replay may still succeed).
        Failed = "failed",
    }
}

/// The longest URL, in bytes.
pub const MAX_URL: usize = 2048;
/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 500;
/// The most endpoints one agent may have.
pub const MAX_ENDPOINTS: u64 = 20;
/// The longest a rotated secret keeps signing beside its successor.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The overlap when none is asked for.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// How long an endpoint may fail every attempt before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The pause before each attempt, after the one before it failed: the first attempt at once,
/// then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (eight attempts over about 27.6 hours). Each
/// pause after the first is jittered by ±10 % ([`jittered`]).
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The pause before attempt `attempts + 1` of a delivery that has made `attempts` attempts, all
/// failed; `None` once the schedule is spent (the delivery is `failed`).
pub fn next_pause(attempts: u32) -> Option<Duration> {
    SCHEDULE.get(usize::try_from(attempts).ok()?).copied()
}

/// `pause` moved by up to ±10 %: `unit` is uniform in `[0, 1)`, so that endpoints failing at
/// once do not all retry at once.
pub fn jittered(pause: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    pause.mul_f64(0.9 + 0.2 * unit)
}

/// Whether an endpoint failing every attempt since `failing_since` (unix seconds) is disabled at
/// `now`.
pub const fn should_disable(failing_since: u64, now: u64) -> bool {
    now.saturating_sub(failing_since) >= DISABLE_AFTER.as_secs()
}

/// Whether deliveries may go to `ip` without the operator's allowance: not private, loopback,
/// link-local, unspecified, broadcast, multicast, shared (CGNAT), documentation, benchmarking or
/// reserved; IPv6 forms of IPv4 addresses are judged as those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (RFC 6890), and the 6to4 relay anycast (RFC 7526).
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 88 && c == 99)
        // Benchmarking (RFC 2544).
        || (a == 198 && (b == 18 || b == 19))
        // Reserved (class E).
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation (2001:db8::/32).
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // Site-local (fec0::/10, deprecated).
        || (first & 0xffc0) == 0xfec0
        // IPv4-compatible, SIIT (::ffff:0:0/96), NAT64 (64:ff9b::/96 and /48), 6to4
        // (2002::/16) and Teredo (2001::/32): forms that reach IPv4 addresses through a
        // translator or relay, refused rather than judged by the address they embed.
        || ip.to_ipv4().is_some()
        || (ip.segments()[..4] == [0, 0, 0, 0] && ip.segments()[4] == 0xffff)
        || first == 0x0064
        || first == 0x2002
        || (first == 0x2001 && ip.segments()[1] == 0))
}

/// An endpoint URL as registered: absolute, `https` (or `http` when `allow_http`), with a host,
/// without credentials or fragment, at most [`MAX_URL`] bytes. A literal IP address must be
/// public unless `allow_private`. (A host name is checked again, after resolution, at every
/// delivery.)
pub fn endpoint_url(
    raw: &str,
    allow_http: bool,
    allow_private: bool,
) -> Result<url::Url, WebhookError> {
    use WebhookCode as C;
    let bad = |why: &str| WebhookError::new(C::InvalidUrl, format!("{raw:?}: {why}"));
    if raw.len() > MAX_URL {
        return Err(WebhookError::new(
            C::InvalidUrl,
            format!("the URL is over {MAX_URL} bytes"),
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(bad("deliveries go over https only")),
        other => return Err(bad(&format!("scheme {other:?} is not http(s)"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL are not allowed"));
    }
    if url.fragment().is_some() {
        return Err(bad("a fragment is never sent; leave it out"));
    }
    let ip = match url.host() {
        None => return Err(bad("no host")),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip
        && !allow_private
        && !is_public(ip)
    {
        return Err(WebhookError::new(
            C::ForbiddenDestination,
            format!("{ip} is not a public address"),
        ));
    }
    Ok(url)
}

/// The event types of a subscription: `None` (or absent) is every type; a list must be
/// non-empty, known and without repeats.
pub fn event_types(raw: Option<&[String]>) -> Result<Option<Vec<EventType>>, WebhookError> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = |detail: String| WebhookError::new(WebhookCode::InvalidEventTypes, detail);
    if raw.is_empty() {
        return Err(bad(
            "an empty list would deliver nothing; leave event_types out for every type".into(),
        ));
    }
    let mut types = Vec::with_capacity(raw.len());
    for name in raw {
        let t: EventType = name.parse().map_err(|_| {
            bad(format!(
                "unknown event type {name:?}; the types are {}",
                EventType::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if types.contains(&t) {
            return Err(bad(format!("{name:?} is listed twice")));
        }
        types.push(t);
    }
    Ok(Some(types))
}

/// A description: at most [`MAX_DESCRIPTION`] characters, no control characters but newlines.
pub fn description(raw: &str) -> Result<&str, WebhookError> {
    if raw.chars().count() > MAX_DESCRIPTION || raw.chars().any(|c| c.is_control() && c != '\n') {
        return Err(WebhookError::new(
            WebhookCode::InvalidDescription,
            format!("at most {MAX_DESCRIPTION} characters, without control characters"),
        ));
    }
    Ok(raw)
}

/// The overlap of a secret rotation: 0 (the old secret stops at once) to [`MAX_OVERLAP`],
/// [`DEFAULT_OVERLAP`] when not given.
pub fn overlap(seconds: Option<u64>) -> Result<Duration, WebhookError> {
    let overlap = seconds.map_or(DEFAULT_OVERLAP, Duration::from_secs);
    if overlap > MAX_OVERLAP {
        return Err(WebhookError::new(
            WebhookCode::InvalidOverlap,
            format!(
                "overlap_seconds may be at most {} (7 days)",
                MAX_OVERLAP.as_secs()
            ),
        ));
    }
    Ok(overlap)
}

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret's key bytes, as `whsec_<base64>`.
pub fn format_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The key bytes of a `whsec_<base64>` secret.
pub fn parse_secret(secret: &str) -> Option<Vec<u8>> {
    BASE64
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()
        .filter(|k| !k.is_empty())
}

/// One `v1,<base64>` signature entry of `body` as message `id` sent at `timestamp` (unix
/// seconds), under `key`.
pub fn signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC-SHA256 accepts every key length")
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one entry per key in force, space-separated.
pub fn signature_header(keys: &[&[u8]], id: &str, timestamp: u64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| signature(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agreement_event_has_its_type() {
        for kind in EventKind::ALL {
            let t = EventType::of_agreement(*kind);
            assert_eq!(t.as_str(), format!("agreement.{kind}"));
        }
    }

    #[test]
    fn signatures_match_the_specifications_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let header = signature_header(&[b"new-key", b"old-key"], "msg_1", 1, b"{}");
        let entries: Vec<_> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], signature(b"new-key", "msg_1", 1, b"{}"));
        assert_eq!(entries[1], signature(b"old-key", "msg_1", 1, b"{}"));
        assert_eq!(
            parse_secret(&format_secret(b"0123456789abcdef")),
            Some(b"0123456789abcdef".to_vec())
        );
        assert_eq!(parse_secret("whsec_"), None);
        assert_eq!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
    }

    #[test]
    fn the_schedule_spans_about_a_day_then_gives_up() {
        let total: Duration = SCHEDULE.iter().sum();
        assert!(
            (Duration::from_secs(24 * 3600)..Duration::from_secs(30 * 3600)).contains(&total),
            "{total:?}"
        );
        assert_eq!(next_pause(0), Some(Duration::ZERO));
        assert_eq!(next_pause(1), Some(Duration::from_secs(5)));
        assert_eq!(next_pause(7), Some(Duration::from_secs(36_000)));
        assert_eq!(next_pause(8), None);
        let five = Duration::from_secs(300);
        assert_eq!(jittered(five, 0.0), Duration::from_secs(270));
        assert_eq!(jittered(five, 0.5), five);
        assert!(jittered(five, 0.999) <= Duration::from_secs(330));
        assert_eq!(jittered(five, f64::NAN), five);
    }

    #[test]
    fn an_endpoint_failing_for_five_days_is_disabled() {
        let day = 24 * 3600;
        assert!(!should_disable(1_000, 1_000 + 5 * day - 1));
        assert!(should_disable(1_000, 1_000 + 5 * day));
        assert!(!should_disable(2_000, 1_000));
    }

    #[test]
    fn private_destinations_are_recognised() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "::ffff:0:a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "192.88.99.1",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!is_public(ip), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            let ip: IpAddr = public.parse().expect("ip");
            assert!(is_public(ip), "{public}");
        }
    }

    #[test]
    fn endpoint_urls_are_checked() {
        let code = |raw: &str, http, private| endpoint_url(raw, http, private).unwrap_err().code;
        assert!(endpoint_url("https://hooks.example.com/pactum?x=1", false, false).is_ok());
        assert_eq!(
            code("http://hooks.example.com/", false, false),
            WebhookCode::InvalidUrl
        );
        assert!(endpoint_url("http://hooks.example.com/", true, false).is_ok());
        assert_eq!(
            code("ftp://example.com/", true, true),
            WebhookCode::InvalidUrl
        );
        assert_eq!(code("/relative", true, true), WebhookCode::InvalidUrl);
        assert_eq!(
            code("https://user:pw@example.com/", true, true),
            WebhookCode::InvalidUrl
        );
        assert_eq!(
            code("https://example.com/#frag", true, true),
            WebhookCode::InvalidUrl
        );
        assert_eq!(
            code("https://127.0.0.1/", false, false),
            WebhookCode::ForbiddenDestination
        );
        assert_eq!(
            code("https://[::1]:8443/", false, false),
            WebhookCode::ForbiddenDestination
        );
        assert!(endpoint_url("http://127.0.0.1:9000/hook", true, true).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert_eq!(code(&long, true, true), WebhookCode::InvalidUrl);
    }

    #[test]
    fn subscriptions_name_known_types_once() {
        assert_eq!(event_types(None), Ok(None));
        assert_eq!(
            event_types(Some(&[
                "agreement.accepted".into(),
                "receipt.issued".into()
            ])),
            Ok(Some(vec![
                EventType::AgreementAccepted,
                EventType::ReceiptIssued
            ]))
        );
        for bad in [
            vec![],
            vec!["agreement.nope".to_owned()],
            vec!["receipt.issued".to_owned(), "receipt.issued".to_owned()],
        ] {
            assert_eq!(
                event_types(Some(&bad)).unwrap_err().code,
                WebhookCode::InvalidEventTypes
            );
        }
    }

    #[test]
    fn overlaps_and_descriptions_are_bounded() {
        assert_eq!(overlap(None), Ok(DEFAULT_OVERLAP));
        assert_eq!(overlap(Some(0)), Ok(Duration::ZERO));
        assert!(overlap(Some(MAX_OVERLAP.as_secs() + 1)).is_err());
        assert!(description("billing pipeline\nprod").is_ok());
        assert!(description("a\u{0}").is_err());
        assert!(description(&"x".repeat(MAX_DESCRIPTION + 1)).is_err());
    }
}
