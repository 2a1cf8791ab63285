//! The HTTP edge's errors. API endpoints answer OAuth JSON errors
//! (RFC 6749 §5.2, RFC 6750 §3); browser pages answer an HTML page.
//! Internal failures are logged with a short reference the person sees
//! instead of any detail, and never become a stack trace.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::random;
use crate::store::StoreError;
use crate::templates::{ErrorPage, RenderHtml};

/// OAuth 2.0 / OpenID Connect error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `login_required`
    LoginRequired,
    /// `consent_required`
    ConsentRequired,
    /// `interaction_required`
    InteractionRequired,
    /// `request_not_supported`
    RequestNotSupported,
    /// `request_uri_not_supported`
    RequestUriNotSupported,
    /// `invalid_token` (RFC 6750)
    InvalidToken,
    /// `insufficient_scope` (RFC 6750)
    InsufficientScope,
    /// `invalid_redirect_uri` (RFC 7591)
    InvalidRedirectUri,
    /// `invalid_client_metadata` (RFC 7591)
    InvalidClientMetadata,
    /// `unsupported_token_type` (RFC 7009)
    UnsupportedTokenType,
    /// `invalid_request_uri` (RFC 9126 §4, OIDC Core §3.1.2.6)
    InvalidRequestUri,
    /// `invalid_dpop_proof` (RFC 9449 §5, §7.1)
    InvalidDpopProof,
}

impl Code {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::InvalidClient => "invalid_client",
            Code::InvalidGrant => "invalid_grant",
            Code::UnauthorizedClient => "unauthorized_client",
            Code::UnsupportedGrantType => "unsupported_grant_type",
            Code::UnsupportedResponseType => "unsupported_response_type",
            Code::InvalidScope => "invalid_scope",
            Code::AccessDenied => "access_denied",
            Code::ServerError => "server_error",
            Code::TemporarilyUnavailable => "temporarily_unavailable",
            Code::LoginRequired => "login_required",
            Code::ConsentRequired => "consent_required",
            Code::InteractionRequired => "interaction_required",
            Code::RequestNotSupported => "request_not_supported",
            Code::RequestUriNotSupported => "request_uri_not_supported",
            Code::InvalidToken => "invalid_token",
            Code::InsufficientScope => "insufficient_scope",
            Code::InvalidRedirectUri => "invalid_redirect_uri",
            Code::InvalidClientMetadata => "invalid_client_metadata",
            Code::UnsupportedTokenType => "unsupported_token_type",
            Code::InvalidRequestUri => "invalid_request_uri",
            Code::InvalidDpopProof => "invalid_dpop_proof",
        }
    }
}

/// An error from a JSON API endpoint.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Code,
    description: String,
    /// For `invalid_client` after Basic authentication: ask for it again.
    basic_challenge: bool,
    /// For bearer-token endpoints: the `WWW-Authenticate: Bearer` header.
    bearer: bool,
    /// For a DPoP-bound token: the `WWW-Authenticate: DPoP` header.
    dpop: bool,
    /// Seconds for `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad(code: Code, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            basic_challenge: false,
            bearer: false,
            dpop: false,
            retry_after: None,
        }
    }

    /// `invalid_client`, 401 (RFC 6749 §5.2). `basic` adds the Basic
    /// challenge header when the client tried Basic authentication.
    pub fn invalid_client(basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: Code::InvalidClient,
            description: "client authentication failed".into(),
            basic_challenge: basic,
            bearer: false,
            dpop: false,
            retry_after: None,
        }
    }

    /// The same error with another description.
    #[must_use]
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// A bearer-token error (RFC 6750 §3.1): 401 `invalid_token`, or 403
    /// `insufficient_scope`, or 400 `invalid_request`.
    pub fn bearer(code: Code, description: impl Into<String>) -> Self {
        let status = match code {
            Code::InsufficientScope => StatusCode::FORBIDDEN,
            Code::InvalidRequest => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        Self {
            status,
            code,
            description: description.into(),
            basic_challenge: false,
            bearer: true,
            dpop: false,
            retry_after: None,
        }
    }

    /// A DPoP-bound token's error at a resource endpoint (RFC 9449 §7.1):
    /// as [`ApiError::bearer`], with the `WWW-Authenticate: DPoP` header
    /// naming the algorithms a proof may use.
    pub fn dpop(code: Code, description: impl Into<String>) -> Self {
        Self {
            bearer: false,
            dpop: true,
            ..Self::bearer(code, description)
        }
    }

    /// The same error with a `Retry-After` header.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The same error with another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// A 500 that logs `detail` under a reference.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        let reference = random::reference();
        tracing::error!(reference, error = %detail, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Code::ServerError,
            description: format!("internal error (reference {reference})"),
            basic_challenge: false,
            bearer: false,
            dpop: false,
            retry_after: None,
        }
    }

    /// The error code.
    pub fn code(&self) -> Code {
        self.code
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        });
        let mut res = (self.status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"cyrcles-bridge\""),
            );
        }
        if self.bearer {
            // The description is ours and ASCII; quotes are not in it.
            let v = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.code.as_str(),
                self.description.replace('"', "'")
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if self.dpop {
            let v = format!(
                "DPoP error=\"{}\", error_description=\"{}\", algs=\"{}\"",
                self.code.as_str(),
                self.description.replace('"', "'"),
                crate::oidc::dpop::ALGS.join(" ")
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}

/// An error shown to a person as a page.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    message: String,
    retry_url: Option<String>,
    retry_after: Option<u64>,
    cancel: Option<Box<Cancel>>,
}

/// The "cancel and go back" form of a login's error page.
#[derive(Debug)]
pub struct Cancel {
    /// The interaction to cancel.
    pub interaction_id: String,
    /// Its CSRF token.
    pub csrf: String,
    /// The site's name.
    pub client_name: String,
    /// Where the cancellation redirects (the page's form may lead there).
    pub redirect_uri: String,
}

impl PageError {
    /// A page with a title and an explanation.
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            retry_url: None,
            retry_after: None,
            cancel: None,
        }
    }

    /// Adds a "cancel and go back to the site" form.
    pub fn cancellable(mut self, cancel: Cancel) -> Self {
        self.cancel = Some(Box::new(cancel));
        self
    }

    /// A 400 page.
    pub fn bad_request(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, message)
    }

    /// Adds a "try again" link.
    pub fn retry(mut self, url: impl Into<String>) -> Self {
        self.retry_url = Some(url.into());
        self
    }

    /// A 429 page with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            format!("Please wait {retry_after} seconds before trying again."),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// A 503 page with `Retry-After`: the bridge holds as much of this as
    /// it keeps.
    pub fn busy(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This bridge is busy",
            format!(
                "Too many logins are open at this bridge right now. Please try again in {retry_after} seconds."
            ),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// A 500 page that logs `detail` under a reference.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        let reference = random::reference();
        tracing::error!(reference, error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            format!(
                "The bridge could not complete this step. If it happens again, give the operator this reference: {reference}."
            ),
        )
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::internal(&e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let redirect_uri = self.cancel.as_ref().map(|c| c.redirect_uri.clone());
        let page = ErrorPage {
            title: self.title,
            message: self.message,
            retry_url: self.retry_url,
            cancel: self.cancel,
        };
        let mut res = (self.status, page.render_html()).into_response();
        if let Some(r) = redirect_uri {
            crate::web::allow_form_target(&mut res, &r);
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}
