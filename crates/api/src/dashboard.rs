//! The owners' dashboard at `/dashboard`: one page, its script and its style, compiled into the
//! binary (no build step). It holds no data: the page signs in with the owner's token and calls
//! the API's own endpoints, so it sees exactly what that token may see (one owner never sees
//! another's agents, agreements, deliveries or receipts). The token stays in the tab's
//! `sessionStorage` and travels in the `Authorization` header; the API reads no cookie, so a
//! page on another site cannot make the browser act for the owner (nothing for CSRF to ride
//! on). A strict Content-Security-Policy allows only these files, no inline script and no other
//! origin; the script writes every value as text, never as markup.

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::AppState;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/app.css");

/// What every dashboard file is sent with.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn script() -> Response {
    file("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    file("text/css; charset=utf-8", STYLE)
}

/// The dashboard's routes (no credentials: the files carry no data).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/app.js", get(script))
        .route("/dashboard/app.css", get(style))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files_and_writes_no_markup_from_data() {
        // No inline script or style for the CSP to have to allow.
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
        assert!(INDEX.contains(r#"<script src="/dashboard/app.js" defer></script>"#));
        // Values go in as text, never as markup.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(sink), "app.js uses {sink}");
        }
        // The token is never put in a cookie or in local (persistent) storage.
        assert!(!SCRIPT.contains("document.cookie") && !SCRIPT.contains("localStorage"));
    }

    #[test]
    fn the_sign_in_form_cannot_put_the_token_in_a_url() {
        // Posted, not a GET query string, should it ever be submitted without the script; and
        // the CSP lets no form submit anywhere (the script sends the token itself).
        assert!(INDEX.contains(r#"<form id="sign-in" method="post""#));
        assert!(CSP.contains("form-action 'none'"));
    }

    #[test]
    fn every_form_control_has_a_label() {
        let controls =
            INDEX.matches("<textarea id=").count() + INDEX.matches("<select id=").count();
        let labels = INDEX.matches("<label for=").count();
        assert_eq!(controls, labels);
    }
}
