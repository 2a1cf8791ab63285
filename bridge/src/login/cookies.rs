//! The bridge's cookies:
//!
//! * `cyrcles_session`: the browser session (a random token; the database
//!   holds its hash). Path `/`.
//! * `cyrcles_ix`: binds an interaction to the browser that opened it (the
//!   interaction's CSRF token). Path `/interaction/<id>`.
//! * `cyrcles_ego`: the remembered ego id, only when the person asked.
//! * `cyrcles_logout`: binds a logout confirmation page to the browser it
//!   was shown to. Path `/logout`.
//!
//! All are HttpOnly and SameSite=Lax, and Secure when the issuer is https.

use axum::http::{HeaderMap, HeaderValue};

use crate::error::PageError;
use crate::state::AppState;
use crate::store::SessionRow;
use crate::{crypto, random, web};

/// Session cookie name.
pub const SESSION: &str = "cyrcles_session";
/// Interaction binding cookie name.
pub const INTERACTION: &str = "cyrcles_ix";
/// Remembered ego cookie name.
pub const REMEMBER: &str = "cyrcles_ego";
/// Logout confirmation binding cookie name.
pub const LOGOUT: &str = "cyrcles_logout";

/// The live session the request's cookie names, if any.
pub async fn session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<SessionRow>, PageError> {
    let Some(token) = web::cookie(headers, SESSION) else {
        return Ok(None);
    };
    if !random::is_token_shaped(&token) {
        return Ok(None);
    }
    Ok(state
        .store
        .session_by_cookie(&crypto::sha256(&token), now)
        .await?)
}

/// Sets the session cookie.
pub fn set_session(state: &AppState, token: &str) -> HeaderValue {
    let ttl = i64::try_from(state.settings.oidc.session_ttl_secs).unwrap_or(86_400);
    web::set_cookie(SESSION, token, "/", ttl, state.settings.secure_cookies)
}

/// Deletes the session cookie.
pub fn clear_session(state: &AppState) -> HeaderValue {
    web::set_cookie(SESSION, "", "/", 0, state.settings.secure_cookies)
}

/// Binds an interaction to this browser.
pub fn bind_interaction(state: &AppState, id: &str, csrf: &str) -> HeaderValue {
    web::set_cookie(
        INTERACTION,
        csrf,
        &format!("/interaction/{id}"),
        crate::oidc::authorize::INTERACTION_TTL,
        state.settings.secure_cookies,
    )
}

/// Binds a logout confirmation page to this browser (`max_age` 0 deletes
/// the binding).
pub fn bind_logout(state: &AppState, nonce: &str, max_age: i64) -> HeaderValue {
    web::set_cookie(
        LOGOUT,
        nonce,
        "/logout",
        max_age,
        state.settings.secure_cookies,
    )
}

/// Whether the request comes from the browser that opened the interaction.
pub fn is_bound(headers: &HeaderMap, csrf: &str) -> bool {
    web::cookie(headers, INTERACTION).is_some_and(|c| crypto::ct_eq(c.as_bytes(), csrf.as_bytes()))
}

/// Remembers (or forgets) the ego on this browser.
pub fn remember(state: &AppState, ego_id: Option<&str>) -> HeaderValue {
    match ego_id {
        Some(id) => web::set_cookie(
            REMEMBER,
            id,
            "/",
            i64::try_from(state.settings.login.remember_days.saturating_mul(86_400)).unwrap_or(0),
            state.settings.secure_cookies,
        ),
        None => web::set_cookie(REMEMBER, "", "/", 0, state.settings.secure_cookies),
    }
}
