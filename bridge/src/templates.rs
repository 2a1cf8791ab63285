//! The bridge's pages (askama templates in the workspace's `templates/`)
//! and the static files they use. Askama escapes every value for HTML.

use askama::Template;
use axum::response::Html;

/// Renders a template; a rendering failure (a bug) becomes a plain page
/// rather than a panic.
pub trait RenderHtml: Template {
    /// The page as HTML.
    fn render_html(&self) -> Html<String> {
        match self.render() {
            Ok(s) => Html(s),
            Err(e) => {
                tracing::error!(error = %e, "template rendering failed");
                Html("<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>".to_string())
            }
        }
    }
}

impl<T: Template> RenderHtml for T {}

/// An error page.
#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Heading.
    pub title: String,
    /// Explanation.
    pub message: String,
    /// Where "try again" goes.
    pub retry_url: Option<String>,
    /// A login's "cancel and go back" form.
    pub cancel: Option<Box<crate::error::Cancel>>,
}

/// The ego entry page.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// The site's name.
    pub client_name: String,
    /// The origin of its redirect URI.
    pub client_origin: String,
    /// The interaction.
    pub interaction_id: String,
    /// CSRF token.
    pub csrf: String,
    /// Prefilled ego id.
    pub ego_id: String,
    /// The fingerprint of the ego of a live session for which this site is
    /// new: the agent will be asked about it.
    pub signed_in_as: Option<String>,
    /// Whether the site asks that the person confirm in their agent.
    pub person_required: bool,
    /// Whether "remember" is ticked.
    pub remember: bool,
    /// What went wrong last time.
    pub error: Option<String>,
    /// Whether this rendering reports an error (400).
    pub status_is_error: bool,
    /// The proof-of-work challenge when the gate is on.
    pub pow_token: Option<String>,
    /// Its difficulty.
    pub pow_difficulty: u8,
}

/// The page shown while the agent is asked.
#[derive(Template)]
#[template(path = "wait.html")]
pub struct WaitPage {
    /// The site's name.
    pub client_name: String,
    /// The ego's fingerprint.
    pub fingerprint: String,
    /// The two digits.
    pub match_code: String,
    /// The interaction.
    pub interaction_id: String,
    /// The challenge.
    pub challenge_id: String,
    /// CSRF token.
    pub csrf: String,
    /// Seconds until the challenge expires.
    pub seconds_left: i64,
    /// Why "send again" did not (the puzzle was missing or wrong).
    pub error: Option<String>,
    /// The proof-of-work token "send again" needs, while the gate is on.
    pub pow_token: Option<String>,
    /// Its difficulty in bits.
    pub pow_difficulty: u8,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    /// The site's name.
    pub client_name: String,
    /// The origin of its redirect URI.
    pub client_origin: String,
    /// Scopes beyond `openid`, described.
    pub scopes: Vec<String>,
    /// Whether the site gets a pairwise identifier.
    pub pairwise: bool,
    /// The host whose sites all see that identifier, when the sector is a
    /// host (two sites on one host share it, OIDC Core §8.1).
    pub shared_sector: Option<String>,
    /// The interaction.
    pub interaction_id: String,
    /// CSRF token.
    pub csrf: String,
}

/// The logout confirmation page.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    /// The site that asked, if known.
    pub client_name: Option<String>,
    /// CSRF token.
    pub csrf: String,
    /// Opaque handle of the validated logout request.
    pub logout_state: String,
}

/// Shown after logging out without a redirect.
#[derive(Debug, Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage;

/// Static files: (path, content type, body).
pub const STATIC_FILES: [(&str, &str, &str); 4] = [
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../templates/static/style.css"),
    ),
    (
        "wait.js",
        "text/javascript; charset=utf-8",
        include_str!("../../templates/static/wait.js"),
    ),
    (
        "autosubmit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../templates/static/autosubmit.js"),
    ),
    (
        "pow.js",
        "text/javascript; charset=utf-8",
        include_str!("../../templates/static/pow.js"),
    ),
];

/// Debug output of pages that carry a CSRF token: the page kind and the
/// site only.
macro_rules! debug_without_secrets {
    ($($t:ident),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    )*};
}

debug_without_secrets!(LoginPage, WaitPage, ConsentPage, LogoutPage);
