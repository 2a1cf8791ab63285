//! HTTP helpers: cookies, the client's address, redirects back to clients
//! (query or form_post), security headers.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oidc::params::ResponseMode;

/// The value of cookie `name`, if the request carries exactly one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for h in headers.get_all(header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(';') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            if k == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim_matches('"').to_string());
            }
        }
    }
    found
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, `Secure` under https.
/// `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let s = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The client's address: the connection's peer, or, behind `hops` proxies
/// that each append the address they see to `X-Forwarded-For`, the entry
/// `hops` from the end (the one the outermost proxy added). A header with
/// fewer entries came through fewer proxies: its first entry is then the
/// address the first of them saw. `hops` 0 ignores the header. A header
/// that does not parse is ignored too.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, hops: usize) -> IpAddr {
    if hops == 0 {
        return peer.ip();
    }
    let mut entries: Vec<&str> = Vec::new();
    for h in headers.get_all("x-forwarded-for") {
        let Ok(v) = h.to_str() else {
            return peer.ip();
        };
        entries.extend(v.split(',').map(str::trim));
    }
    let Some(last) = entries.len().checked_sub(1) else {
        return peer.ip();
    };
    let at = last.saturating_sub(hops - 1);
    entries
        .get(at)
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| peer.ip())
}

/// 303 See Other to `location`.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `redirect_uri` with `params` added to its query.
fn with_query(redirect_uri: &str, params: &[(&str, &str)]) -> Option<url::Url> {
    let mut url = url::Url::parse(redirect_uri).ok()?;
    url.query_pairs_mut().extend_pairs(params);
    Some(url)
}

/// Hidden form fields carrying `params`.
fn hidden_inputs(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect()
}

/// An HTML page under `csp` that is never cached (it carries a code or an
/// error for the client).
fn uncached_page(body: String, csp: &str) -> Response {
    let mut res = (StatusCode::OK, axum::response::Html(body)).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Sends authorization response parameters to the client's redirect URI,
/// in the query (303) or as an auto-submitted form (form_post).
pub fn to_client(redirect_uri: &str, mode: ResponseMode, params: &[(&str, &str)]) -> Response {
    match mode {
        ResponseMode::Query => match with_query(redirect_uri, params) {
            Some(url) => see_other(url.as_str()),
            None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        ResponseMode::FormPost => {
            let body = format!(
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Continuing…</title>\
                 <script src=\"/static/autosubmit.js\" defer></script></head><body>\
                 <form method=\"post\" action=\"{}\" id=\"response\">{}\
                 <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
                html_escape(redirect_uri),
                hidden_inputs(params)
            );
            let csp = format!(
                "default-src 'none'; script-src 'self'; form-action {}; frame-ancestors 'none'; base-uri 'none'",
                crate::oidc::client::origin_of(redirect_uri)
            );
            uncached_page(body, &csp)
        }
    }
}

/// The same parameters, but sent by the person: a page that says `notice`
/// and offers a link (query) or a button (form_post) to the client. For
/// answers the bridge decides on its own to a redirect URI that anyone
/// could have registered: an automatic redirect there would make the
/// bridge an open redirector (RFC 9700 §4.11.2).
pub fn to_client_by_hand(
    redirect_uri: &str,
    mode: ResponseMode,
    params: &[(&str, &str)],
    notice: &str,
) -> Response {
    let origin = html_escape(&crate::oidc::client::origin_of(redirect_uri));
    let back = match mode {
        ResponseMode::Query => {
            let Some(url) = with_query(redirect_uri, params) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            format!(
                "<p><a href=\"{}\" id=\"back\">Go back to {origin}</a></p>",
                html_escape(url.as_str())
            )
        }
        ResponseMode::FormPost => format!(
            "<form method=\"post\" action=\"{}\">{}<button type=\"submit\" id=\"back\">Go back to {origin}</button></form>",
            html_escape(redirect_uri),
            hidden_inputs(params)
        ),
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Back to {origin}</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main>\
         <h1>Back to {origin}</h1><p id=\"notice\">{}</p>{back}</main></body></html>",
        html_escape(notice),
    );
    let mut res = uncached_page(body, &page_csp("'self'"));
    allow_form_target(&mut res, redirect_uri);
    res
}

/// The policy of the bridge's pages, with `form_action` as the allowed
/// form targets.
fn page_csp(form_action: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Lets a page's form lead to `target`'s origin: the consent page's answer
/// redirects to the client, the logout confirmation to its post-logout
/// URI, and Chromium applies `form-action` to the redirects that follow a
/// form submission (a headless-Chromium test found the consent redirect
/// blocked). Other pages keep `form-action 'self'`.
pub fn allow_form_target(res: &mut Response, target: &str) {
    let Ok(url) = url::Url::parse(target) else {
        return;
    };
    let origin = url.origin();
    if !origin.is_tuple() {
        return;
    }
    let csp = page_csp(&format!("'self' {}", origin.ascii_serialization()));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The security headers every response gets (unless the handler set its
/// own CSP).
pub fn security_headers(res: &mut Response, hsts: bool) {
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(v) = HeaderValue::from_str(&page_csp("'self'"))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_once() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        h.append(header::COOKIE, "b=3".parse().unwrap());
        assert_eq!(cookie(&h, "b"), None, "two values: trust neither");
    }

    #[test]
    fn the_client_address_is_taken_as_many_hops_from_the_end() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 198.51.100.7, 203.0.113.9".parse().unwrap(),
        );
        let ip = |h: &HeaderMap, hops| client_ip(h, peer, hops).to_string();
        // Not trusted: the connection's peer, whatever the header says.
        assert_eq!(ip(&h, 0), "10.0.0.1");
        // One proxy: the entry it appended.
        assert_eq!(ip(&h, 1), "203.0.113.9");
        // Two (a CDN, then nginx): the CDN's entry; what the client wrote
        // before it is never used.
        assert_eq!(ip(&h, 2), "198.51.100.7");
        // Fewer entries than hops: the first one.
        let mut one = HeaderMap::new();
        one.insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(ip(&one, 2), "198.51.100.7");
        // No header, or one that does not parse: the peer.
        assert_eq!(ip(&HeaderMap::new(), 1), "10.0.0.1");
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "not-an-address".parse().unwrap());
        assert_eq!(ip(&bad, 1), "10.0.0.1");
        // Two header lines count as one list.
        let mut two = HeaderMap::new();
        two.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        two.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(ip(&two, 1), "203.0.113.9");
        assert_eq!(ip(&two, 2), "6.6.6.6");
    }

    #[test]
    fn query_responses_keep_the_redirect_uris_query() {
        let r = to_client(
            "https://a.example/cb?x=1",
            ResponseMode::Query,
            &[("code", "c d"), ("state", "s")],
        );
        let loc = r.headers().get(header::LOCATION).unwrap().to_str().unwrap();
        assert_eq!(loc, "https://a.example/cb?x=1&code=c+d&state=s");
    }

    #[test]
    fn form_post_escapes_values() {
        let r = to_client(
            "https://a.example/cb",
            ResponseMode::FormPost,
            &[("state", "\"><script>")],
        );
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("form-action https://a.example"));
    }

    fn csp_of(res: &Response) -> String {
        res.headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_page_may_lead_its_form_to_the_clients_origin_only() {
        let mut res = StatusCode::OK.into_response();
        allow_form_target(&mut res, "https://shop.example:8443/cb?x=1");
        security_headers(&mut res, false);
        let csp = csp_of(&res);
        assert!(
            csp.contains("form-action 'self' https://shop.example:8443;"),
            "{csp}"
        );
        // Not a URL, or an opaque origin: the page keeps 'self' alone.
        for target in ["not a url", "data:text/html,x"] {
            let mut res = StatusCode::OK.into_response();
            allow_form_target(&mut res, target);
            security_headers(&mut res, false);
            assert!(csp_of(&res).contains("form-action 'self';"), "{target}");
        }
    }
}
