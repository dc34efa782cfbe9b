//! Webhook delivery. The database writes what to deliver (`pactum_db::webhooks`: a message per
//! event, in the transaction of the change it announces, and a delivery per endpoint); the
//! workers here take due deliveries (`FOR UPDATE SKIP LOCKED`, safe in several processes), sign
//! each with the endpoint's secrets (Standard Webhooks, `pactum_core::webhook`), send it through
//! a [`guard`]ed HTTP client, and write the attempt and what comes next: succeeded, a retry on
//! the schedule, or failed; an endpoint failing every attempt for days is disabled.
//!
//! At-least-once: a delivery is leased while attempted, so a worker killed mid-attempt leaves it
//! to be taken again when the lease ends, with the same `webhook-id`; receivers deduplicate by
//! it.

pub mod guard;
pub mod worker;

pub use worker::{Metrics, Settings, Worker};
