//! What a security review of an OpenID provider checks, each as the
//! attack it stops (issue 13): a code or a token stays with the client it
//! was issued to, a client learns only what concerns it, and discovery and
//! errors say what the bridge really does.

use cyrcles_bridge::oidc::acr;
use cyrcles_core::login::ApprovedBy;
use openidconnect::{OAuth2TokenResponse, PkceCodeVerifier};
use serde_json::{Value, json};

use crate::common::{
    Answer, BridgeOptions, Outcome, REDIRECT, Rp, TestAgent, TestBridge, browse, browser, env,
    get_json, location, open_page, query,
};

/// A registered site and its relying party.
struct Site {
    id: String,
    secret: String,
    rp: Rp,
}

impl Site {
    async fn new(bridge: &TestBridge) -> Site {
        let (id, secret) = bridge.confidential().await;
        let rp = Rp::discover(bridge, &id, Some(&secret)).await;
        Site { id, secret, rp }
    }

    /// A login through the browser: the code and its PKCE verifier.
    async fn code(&self, bridge: &TestBridge, agent: &TestAgent) -> (String, PkceCodeVerifier) {
        let (url, _, _, verifier) = self.rp.auth_url(&[], &[]);
        let code = browse(bridge, &browser(), &url, &agent.ego_text())
            .await
            .code();
        (code, verifier)
    }

    async fn introspect(&self, bridge: &TestBridge, token: &str) -> Value {
        browser()
            .post(bridge.url("/introspect"))
            .basic_auth(&self.id, Some(&self.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn copy(v: &PkceCodeVerifier) -> PkceCodeVerifier {
    PkceCodeVerifier::new(v.secret().clone())
}

async fn userinfo_status(bridge: &TestBridge, access: &str) -> u16 {
    browser()
        .get(bridge.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Item 7: another client that got hold of a site's code (a leaked
/// redirect, a log) neither redeems it nor burns it: the code was marked
/// used before the client was compared, so the thief's try made the site's
/// own redemption look like a replay and revoked the site's grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_redeemed_by_another_client_is_refused_and_stays_the_sites() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 131).await;
    let site = Site::new(&bridge).await;
    let thief = Site::new(&bridge).await;
    let (code, verifier) = site.code(&bridge, &agent).await;

    let stolen = thief.rp.exchange(code.clone(), copy(&verifier)).await;
    assert!(stolen.unwrap_err().contains("invalid_grant"));

    let tokens = site
        .rp
        .exchange(code.clone(), copy(&verifier))
        .await
        .expect("the site still redeems its own code");
    assert_eq!(
        userinfo_status(&bridge, tokens.access_token().secret()).await,
        200
    );

    // After the site redeemed it, the thief's replay still revokes nothing.
    assert!(
        thief
            .rp
            .exchange(code.clone(), copy(&verifier))
            .await
            .is_err()
    );
    assert_eq!(
        userinfo_status(&bridge, tokens.access_token().secret()).await,
        200
    );
    // The site's own replay is a replay (RFC 6749 §4.1.2): the grant ends.
    assert!(site.rp.exchange(code, verifier).await.is_err());
    assert_eq!(
        userinfo_status(&bridge, tokens.access_token().secret()).await,
        401
    );
}

/// Item 6: a confidential client, self-registered by anyone, learned
/// through introspection the subject, scope and lifetime of every other
/// client's tokens. Now a token is introspected by its own client or by a
/// resource server the operator named (RFC 7662 §4); to anyone else it is
/// `active: false`, as an unknown token is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_answers_the_tokens_client_and_named_resource_servers_only() {
    let dir = std::env::temp_dir().join(format!(
        "cyrcles-bridge-test-{}",
        cyrcles_bridge::random::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut first = TestBridge::start_with(BridgeOptions {
        dir: Some(dir.clone()),
        ..BridgeOptions::default()
    })
    .await;
    let (api_id, api_secret) = first.confidential().await;
    first.stop().await;
    let clock = first.clock.clone();
    drop(first);

    let bridge = TestBridge::start_with(BridgeOptions {
        dir: Some(dir),
        clock,
        env: env(&[("CYRCLES_BRIDGE_OIDC_RESOURCE_SERVERS", &api_id)]),
        ..BridgeOptions::default()
    })
    .await;
    let api = Site {
        rp: Rp::discover(&bridge, &api_id, Some(&api_secret)).await,
        id: api_id,
        secret: api_secret,
    };
    let agent = TestAgent::start(&bridge, 132).await;
    let site = Site::new(&bridge).await;
    let stranger = Site::new(&bridge).await;
    let (code, verifier) = site.code(&bridge, &agent).await;
    let tokens = site.rp.exchange(code, verifier).await.unwrap();
    let access = tokens.access_token().secret();
    let refresh = tokens.refresh_token().unwrap().secret();

    for token in [access, refresh] {
        let own = site.introspect(&bridge, token).await;
        assert_eq!(own["active"], true, "{own}");
        assert_eq!(own["client_id"], site.id);
        let seen = stranger.introspect(&bridge, token).await;
        assert_eq!(
            seen,
            json!({ "active": false }),
            "a stranger learns nothing"
        );
        let by_api = api.introspect(&bridge, token).await;
        assert_eq!(by_api["active"], true, "a named resource server: {by_api}");
        assert_eq!(by_api["sub"], own["sub"]);
    }
}

/// Item 11: discovery advertises only what the bridge does. The `claims`
/// parameter is accepted (OIDC Core §5.5 lets a provider ignore it) but
/// changes nothing, so it is not advertised as supported.
#[tokio::test]
async fn discovery_does_not_advertise_the_claims_parameter() {
    let bridge = TestBridge::start().await;
    let d: Value = get_json(&browser(), &bridge.url("/.well-known/openid-configuration")).await;
    assert_eq!(d["claims_parameter_supported"], false);
}

/// Item 11: PKCE is required from confidential clients too (OAuth 2.1,
/// RFC 9700 §2.1.1): a code intercepted on its way back is useless without
/// the verifier. An operator may turn it off for an old client library.
#[tokio::test]
async fn confidential_clients_need_pkce_unless_the_operator_turns_it_off() {
    let without_pkce = |bridge: &TestBridge, id: &str| {
        let mut u = url::Url::parse(&bridge.url("/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("state", "s1");
        u.to_string()
    };
    let bridge = TestBridge::start().await;
    let (id, _) = bridge.confidential().await;
    let res = browser()
        .get(without_pkce(&bridge, &id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let q = query(&location(&res));
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("PKCE"), "{q:?}");
    assert_eq!(q["state"], "s1");

    let lenient = TestBridge::start_with(BridgeOptions {
        env: env(&[("CYRCLES_BRIDGE_OIDC_REQUIRE_PKCE_FOR_CONFIDENTIAL", "false")]),
        ..BridgeOptions::default()
    })
    .await;
    let (id, _) = lenient.confidential().await;
    let res = browser()
        .get(without_pkce(&lenient, &id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with("/interaction/"),
        "{}",
        location(&res)
    );
}

/// Item 11: a client that authenticates with another method than the one
/// it registered is told which one it registered, instead of a bare
/// `invalid_client` that sends its developer guessing.
#[tokio::test]
async fn a_wrong_authentication_method_is_named() {
    let bridge = TestBridge::start().await;
    let (id, secret) = bridge.confidential().await;
    let res = browser()
        .post(bridge.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.contains("client_secret_basic") && d.contains("client_secret_post"),
        "{d}"
    );

    // A wrong secret with the right method names nothing.
    let res = browser()
        .post(bridge.url("/token"))
        .basic_auth(&id, Some("not the secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(
        !body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("registered"),
        "{body}"
    );
}

/// Item 9: the bridge POSTs logout tokens to the back-channel logout URI a
/// client registered. A stranger who registers a client may not aim that
/// POST at the bridge's own network: at registration, private, loopback
/// and link-local targets are refused; at send time the target is checked
/// again (it may have been stored before the rule) and names are resolved
/// to public addresses only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_channel_logout_does_not_reach_the_bridges_own_network() {
    let bridge = TestBridge::start().await;
    let register = |bcl: &str| {
        browser()
            .post(bridge.url("/register"))
            .json(&json!({
                "redirect_uris": [REDIRECT],
                "backchannel_logout_uri": bcl,
            }))
            .send()
    };
    for bad in [
        "http://127.0.0.1:8080/bcl",
        "https://127.0.0.1/bcl",
        "https://10.0.0.7/bcl",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/bcl",
        "https://localhost/bcl",
    ] {
        let res = register(bad).await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{bad}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("backchannel_logout_uri"),
            "{body}"
        );
    }
    let res = register("https://rp.example/bcl").await.unwrap();
    assert_eq!(res.status(), 201);

    // A self-registered client whose stored target is a loopback port.
    let inside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    inside.set_nonblocking(true).unwrap();
    let target = format!("https://{}/bcl", inside.local_addr().unwrap());
    let meta: cyrcles_bridge::oidc::client::ClientMetadata = serde_json::from_value(json!({
        "redirect_uris": [REDIRECT],
        "backchannel_logout_uri": target,
    }))
    .unwrap();
    let created = cyrcles_bridge::oidc::register::create_client(
        &bridge.state.store,
        None,
        meta.validate().unwrap(),
        true,
        bridge.clock.now(),
    )
    .await
    .unwrap();
    let id = created.row.client_id.clone();
    let secret = created.secret.clone().unwrap();
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let agent = TestAgent::start(&bridge, 133).await;
    let b = browser();
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let code = browse(&bridge, &b, &url, &agent.ego_text()).await.code();
    rp.exchange(code, verifier).await.unwrap();

    // The person logs out at the bridge: the session ends, and the
    // stranger's target is refused before anything is sent.
    let form = logout_form(&bridge, &b).await;
    assert_eq!(post_logout(&bridge, &b, &form).await, 200);
    assert_eq!(bridge.state.metrics.logins("backchannel_refused"), 1);
    // The refusal is decided before any request is made: nothing connected.
    assert_eq!(
        inside.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock)
    );
}

/// The logout page's two hidden fields, as a browser that loaded it holds
/// them.
async fn logout_form(bridge: &TestBridge, b: &reqwest::Client) -> (String, String) {
    let page = b
        .get(bridge.url("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (
        crate::common::input(&page, "csrf").unwrap(),
        crate::common::input(&page, "logout_state").unwrap(),
    )
}

async fn post_logout(
    bridge: &TestBridge,
    b: &reqwest::Client,
    (csrf, logout_state): &(String, String),
) -> u16 {
    b.post(bridge.url("/logout"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("logout_state", logout_state.as_str()),
            ("decision", "logout"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Item 2: the logout confirmation ran on a GET and its token was an HMAC
/// of the form alone, valid in any browser for ever: a cross-site link
/// ended the victim's session (and every refresh token issued through it),
/// or bounced the browser to any registered URI without a click. Now only
/// a POST from the browser the page was shown to, within ten minutes,
/// confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_is_confirmed_only_by_the_browser_that_was_asked_and_in_time() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 134).await;
    let site = Site::new(&bridge).await;
    let victim = browser();
    let (url, _, _, _) = site.rp.auth_url(&[], &[]);
    browse(&bridge, &victim, &url, &agent.ego_text())
        .await
        .code();
    let logged_in = || async {
        let (url, _, _, _) = site.rp.auth_url(&[], &[("prompt", "none")]);
        browse(&bridge, &victim, &url, &agent.ego_text())
            .await
            .params()
            .contains_key("code")
    };
    assert!(logged_in().await);

    // The attacker loads the page in their own browser and sends the
    // victim a link with its fields and a decision.
    let attacker = browser();
    let fields = logout_form(&bridge, &attacker).await;
    let mut link = url::Url::parse(&bridge.url("/logout")).unwrap();
    link.query_pairs_mut()
        .append_pair("csrf", &fields.0)
        .append_pair("logout_state", &fields.1)
        .append_pair("decision", "logout");
    let res = victim.get(link.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 200, "a link only asks");
    assert!(res.text().await.unwrap().contains("name=\"decision\""));
    assert!(logged_in().await, "a link ended the session");

    // ... or posts the fields from another site.
    assert_eq!(post_logout(&bridge, &victim, &fields).await, 400);
    assert!(logged_in().await, "a cross-site post ended the session");

    // The victim's own page answered too late.
    let own = logout_form(&bridge, &victim).await;
    bridge.clock.advance(601);
    assert_eq!(post_logout(&bridge, &victim, &own).await, 400);
    assert!(logged_in().await);

    // The victim's own page, in time: logged out.
    let own = logout_form(&bridge, &victim).await;
    assert_eq!(post_logout(&bridge, &victim, &own).await, 200);
    assert!(!logged_in().await);
}

/// Item 4: the login page and the agent showed the origin of the client's
/// first registered redirect URI, while the code went to the request's
/// `redirect_uri`: a client with several could show one origin and take
/// the code at another. Both now show the request's origin, and a client's
/// redirect URIs must share one host, whatever its subject type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_shown_is_where_the_code_goes() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 135).await;
    let other = "http://127.0.0.1:10/cb";
    let (id, _) = bridge
        .client(json!({
            "redirect_uris": [REDIRECT, other],
            "token_endpoint_auth_method": "none",
            "subject_type": "public",
        }))
        .await;
    let mut url = url::Url::parse(&bridge.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &id)
        .append_pair("redirect_uri", other)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("code_challenge", &"a".repeat(43))
        .append_pair("code_challenge_method", "S256");
    let b = browser();
    let (_, page) = crate::common::open_page(&bridge, &b, url.as_str()).await;
    assert!(page.contains("http://127.0.0.1:10"), "{page}");
    assert!(!page.contains("http://127.0.0.1:9<"), "{page}");
    let (_, res, _) =
        crate::common::start_login(&bridge, &b, url.as_str(), &agent.ego_text()).await;
    assert_eq!(res.status(), 303);
    let wait = bridge.url(&location(&res));
    let s: Value = get_json(&b, &format!("{wait}/status?wait=20")).await;
    assert_ne!(s["status"], "pending", "{s}");
    let shown = agent
        .challenges
        .lock()
        .unwrap()
        .last()
        .map(|c| c.params().redirect_origin.clone());
    assert_eq!(shown.as_deref(), Some("http://127.0.0.1:10"));

    // A registration spreading redirect URIs over hosts is refused.
    let res = browser()
        .post(bridge.url("/register"))
        .json(&json!({
            "redirect_uris": ["https://a.example/cb", "https://b.example/cb"],
            "subject_type": "public",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
}

/// The claims of a token response's ID token (already checked by the RP
/// library where a test needs it).
fn id_claims(tokens: &openidconnect::core::CoreTokenResponse) -> Value {
    let raw = openidconnect::TokenResponse::id_token(tokens)
        .unwrap()
        .to_string();
    serde_json::from_slice(&crate::flow::base64_decode(raw.split('.').nth(1).unwrap())).unwrap()
}

/// Item 5: two sites a person logs in to from one browser session could
/// link them: the ID (and logout) tokens carried the session's one `sid`,
/// and every loopback client (and every client of one private-use scheme)
/// shared one pairwise sector, so the same subject. Now each client sees
/// its own `sid`, and such clients are their own sector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_of_one_session_see_unlinkable_subjects_and_session_ids() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 136).await;
    let a = Site::new(&bridge).await;
    let b = Site::new(&bridge).await;
    let person = browser();
    let mut seen = Vec::new();
    for site in [&a, &b, &a] {
        let (url, _, _, verifier) = site.rp.auth_url(&[], &[]);
        let code = browse(&bridge, &person, &url, &agent.ego_text())
            .await
            .code();
        let tokens = site.rp.exchange(code, verifier).await.unwrap();
        seen.push(id_claims(&tokens));
    }
    assert_ne!(seen[0]["sub"], seen[1]["sub"]);
    assert_ne!(seen[0]["sid"], seen[1]["sid"]);
    assert_eq!(seen[0]["sub"], seen[2]["sub"], "a site's subject is stable");
    assert_eq!(
        seen[0]["sid"], seen[2]["sid"],
        "and so is its sid in one session"
    );
}

fn form_action(res: &reqwest::Response) -> String {
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with("form-action"))
        .unwrap()
        .to_string()
}

/// Item 1: Chromium applies CSP `form-action` to the redirect that follows
/// a form post, so every page whose form's answer can be a redirect to the
/// site must allow the site's origin: the ego page (cancel, and the ego form
/// itself when the agent approves by policy at once), the wait page
/// (cancel) and the page of a denied login, which now also offers "cancel
/// and go back" and a "try again" that keeps the ego typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_page_lets_its_forms_go_back_to_the_site() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 137).await;
    // Held, so that the wait page is seen before the agent answers.
    agent.set_answer(crate::common::Answer::Hold);
    let site = Site::new(&bridge).await;
    let (url, _, _, _) = site.rp.auth_url(&[], &[]);
    let b = browser();
    let site_origin = "http://127.0.0.1:9";

    let res = b.get(&url).send().await.unwrap();
    let ego_page = bridge.url(&location(&res));
    let res = b.get(&ego_page).send().await.unwrap();
    assert!(form_action(&res).contains(site_origin), "ego page");
    let csrf = crate::common::input(&res.text().await.unwrap(), "csrf").unwrap();

    let res = b
        .post(format!("{ego_page}/ego"))
        .form(&[("csrf", csrf.as_str()), ("ego_id", &agent.ego_text())])
        .send()
        .await
        .unwrap();
    let wait = bridge.url(&location(&res));
    let res = b.get(&wait).send().await.unwrap();
    assert!(form_action(&res).contains(site_origin), "wait page");
    cyrcles_testkit::wait_until(30, "the challenge to reach the agent", || async {
        agent.held_count() == 1
    })
    .await;
    assert_eq!(agent.answer_held(false), 1);
    let s: Value = get_json(&b, &format!("{wait}/status?wait=20")).await;
    assert_eq!(s["status"], "denied", "{s}");

    let res = b.get(format!("{wait}/continue")).send().await.unwrap();
    assert!(form_action(&res).contains(site_origin), "denied page");
    let page = res.text().await.unwrap();
    assert!(page.contains("Cancel and go back to Test Site"), "{page}");
    let again = crate::common::input(&page, "csrf").unwrap();
    let retry = page
        .split("href=\"")
        .find_map(|p| {
            p.split_once("\" id=\"retry\"")
                .map(|(u, _)| u.replace("&amp;", "&"))
        })
        .unwrap();
    let res = b.get(bridge.url(&retry)).send().await.unwrap();
    let retry_page = res.text().await.unwrap();
    assert!(
        retry_page.contains(&format!("value=\"{}\"", agent.ego_text())),
        "try again keeps the ego"
    );

    // Cancel from the denied page: the site hears access_denied.
    let res = b
        .post(format!("{ego_page}/cancel"))
        .form(&[("csrf", again.as_str())])
        .send()
        .await
        .unwrap();
    let back = location(&res);
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(query(&back)["error"], "access_denied");
}

/// Refreshes `token` as `site`: the new refresh token, or the error body.
async fn refresh(bridge: &TestBridge, site: &Site, token: &str) -> Result<String, Value> {
    let res = browser()
        .post(bridge.url("/token"))
        .basic_auth(&site.id, Some(&site.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let ok = res.status().is_success();
    let body: Value = res.json().await.unwrap();
    if ok {
        Ok(body["refresh_token"].as_str().unwrap().to_string())
    } else {
        Err(body)
    }
}

/// Item 8, in part: each refresh re-dated the grant, so a grant refreshed
/// within every 30 days lived for ever, long after the person last saw
/// their agent. A grant now ends 90 days (`oidc.max_grant_lifetime_secs`)
/// after the login, and no refresh token outlives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_ends_at_its_lifetime_however_often_it_is_refreshed() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 138).await;
    let site = Site::new(&bridge).await;
    let (code, verifier) = site.code(&bridge, &agent).await;
    let tokens = site.rp.exchange(code, verifier).await.unwrap();
    let logged_in = bridge.clock.now();
    let mut token = tokens.refresh_token().unwrap().secret().clone();
    for _ in 0..4 {
        bridge.clock.advance(20 * 86_400);
        token = refresh(&bridge, &site, &token)
            .await
            .expect("within the lifetime");
    }
    // Day 80: the last refresh token ends with the grant, not 30 days on.
    let seen = site.introspect(&bridge, &token).await;
    assert_eq!(seen["exp"], logged_in + 90 * 86_400, "{seen}");
    bridge.clock.advance(10 * 86_400);
    let refused = refresh(&bridge, &site, &token).await.unwrap_err();
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
}

/// Item 2, second half: an invalid authorization request was answered by
/// a redirect to the client's URI, so anyone could register a client whose
/// redirect URI is theirs and use the bridge as an open redirector (RFC
/// 9700 §4.11.2): for a dynamically registered client the error is now
/// shown on the bridge's page.
#[tokio::test]
async fn a_bad_request_for_a_self_registered_client_is_not_redirected() {
    let bridge = TestBridge::start().await;
    let registered: Value = browser()
        .post(bridge.url("/register"))
        .json(&json!({ "redirect_uris": ["https://evil.example/cb"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bad = |id: &str, redirect: &str| {
        let mut u = url::Url::parse(&bridge.url("/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", id)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "token")
            .append_pair("scope", "openid");
        u.to_string()
    };
    let res = browser()
        .get(bad(
            registered["client_id"].as_str().unwrap(),
            "https://evil.example/cb",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("https://evil.example"));

    // A client the operator registered still gets its error by redirect.
    let (id, _) = bridge.confidential().await;
    let res = browser().get(bad(&id, REDIRECT)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(query(&location(&res))["error"], "unsupported_response_type");
}

/// How many challenges `agent` was sent, and whether the last one asked
/// for the person.
fn challenges(agent: &TestAgent) -> (usize, bool) {
    let seen = agent.challenges.lock().unwrap();
    (seen.len(), seen.last().is_some_and(|c| c.params().confirm))
}

/// Item 3: with a live bridge session, `/authorize` for any other site
/// issued a code after one consent click (or none): the agent approved one
/// site, and its bans, quotas and "not me" were never asked about the
/// others, so a shared browser logged the next person in everywhere. Now a
/// site new to the session sends the agent a challenge (the page says so),
/// and a site it approved in the session is answered without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_site_of_a_session_asks_the_agent() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 140).await;
    let a = Site::new(&bridge).await;
    let b = Site::new(&bridge).await;
    let person = browser();
    let (url, _, _, verifier) = a.rp.auth_url(&[], &[]);
    let code = browse(&bridge, &person, &url, &agent.ego_text())
        .await
        .code();
    let first = id_claims(&a.rp.exchange(code, verifier).await.unwrap());
    assert_eq!(challenges(&agent).0, 1);

    // Site B in the same browser: the ego page, filled in with the
    // session's ego and saying that the agent will be asked; no code.
    let (url, _, _, _) = b.rp.auth_url(&[], &[]);
    let (ix, page) = open_page(&bridge, &person, &url).await;
    assert!(ix.starts_with("/interaction/"), "{ix}");
    assert!(page.contains("id=\"signed-in-as\""), "{page}");
    assert!(
        page.contains(&format!("value=\"{}\"", agent.ego_text())),
        "{page}"
    );
    // Without a page, B cannot be asked: login_required, nothing sent.
    let (url, _, _, _) = b.rp.auth_url(&[], &[("prompt", "none")]);
    let end = browse(&bridge, &person, &url, &agent.ego_text()).await;
    assert_eq!(end.params()["error"], "login_required");
    assert_eq!(challenges(&agent).0, 1);

    // The agent refuses B (a ban, or the person): no code for B.
    agent.set_answer(Answer::Deny);
    let (url, _, _, _) = b.rp.auth_url(&[], &[]);
    match browse(&bridge, &person, &url, &agent.ego_text()).await {
        Outcome::Page(_, html) => assert!(html.contains("Login denied"), "{html}"),
        Outcome::Redirect(q) => panic!("B got through a refusing agent: {q:?}"),
    }
    assert_eq!(challenges(&agent).0, 2, "B was asked");
    // A, approved in this session, is answered without the agent.
    let (url, _, _, verifier) = a.rp.auth_url(&[], &[("prompt", "none")]);
    let code = browse(&bridge, &person, &url, &agent.ego_text())
        .await
        .code();
    let again = id_claims(&a.rp.exchange(code, verifier).await.unwrap());
    assert_eq!(challenges(&agent).0, 2, "A was not asked again");
    assert_eq!(again["sid"], first["sid"]);

    // The agent approves B: the same session goes on for both sites.
    agent.set_answer(Answer::Approve);
    let (url, _, _, verifier) = b.rp.auth_url(&[], &[]);
    let code = browse(&bridge, &person, &url, &agent.ego_text())
        .await
        .code();
    b.rp.exchange(code, verifier).await.unwrap();
    assert_eq!(challenges(&agent).0, 3);
    let sessions = bridge
        .state
        .store
        .live_sessions(bridge.clock.now())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "one session: {sessions:?}");
    let grants = bridge
        .state
        .store
        .grants_of_session(&sessions[0].sid)
        .await
        .unwrap();
    for site in [&a, &b] {
        assert!(
            grants.iter().any(|g| g.client_id == site.id),
            "{} lost its grant",
            site.id
        );
    }
    let (url, _, _, verifier) = a.rp.auth_url(&[], &[("prompt", "none")]);
    let code = browse(&bridge, &person, &url, &agent.ego_text())
        .await
        .code();
    let after = id_claims(&a.rp.exchange(code, verifier).await.unwrap());
    assert_eq!(after["sid"], first["sid"], "A's session id did not change");
}

/// Logs in at `site` in a fresh browser with `extra` parameters: the ID
/// token's claims, or the page the login ended on.
async fn login_claims(
    bridge: &TestBridge,
    agent: &TestAgent,
    site: &Site,
    extra: &[(&str, &str)],
) -> Result<Value, String> {
    let (url, _, _, verifier) = site.rp.auth_url(&[], extra);
    match browse(bridge, &browser(), &url, &agent.ego_text()).await {
        Outcome::Redirect(q) => {
            let code = q.get("code").cloned().ok_or(format!("{q:?}"))?;
            Ok(id_claims(&site.rp.exchange(code, verifier).await.unwrap()))
        }
        Outcome::Page(_, html) => Err(html),
    }
}

/// Item 10: the ID token said the person confirmed a match code even when
/// the agent approved on its own, by a remembered site or a policy. Now
/// `acr` and `amr` follow the agent's signed answer; an answer that does
/// not say (an older agent) claims the weaker class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokens_say_how_the_agent_approved() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 141).await;
    let site = Site::new(&bridge).await;
    let cases = [
        (Answer::Approve, acr::PERSON, json!(["swk", "user"])),
        (
            Answer::ApproveAs(ApprovedBy::RememberedSite),
            acr::AGENT,
            json!(["swk"]),
        ),
        (
            Answer::ApproveAs(ApprovedBy::Policy),
            acr::AGENT,
            json!(["swk"]),
        ),
        (Answer::Legacy, acr::AGENT, json!(["swk"])),
    ];
    for (answer, class, methods) in cases {
        agent.set_answer(answer);
        let claims = login_claims(&bridge, &agent, &site, &[]).await.unwrap();
        assert_eq!(claims["acr"], class, "{answer:?}: {claims}");
        assert_eq!(claims["amr"], methods, "{answer:?}: {claims}");
        assert_eq!(claims["auth_time"], bridge.clock.now(), "{claims}");
    }
    let discovery = get_json(&browser(), &bridge.url("/.well-known/openid-configuration")).await;
    assert_eq!(
        discovery["acr_values_supported"],
        json!([acr::PERSON, acr::AGENT])
    );
}

/// Item 10, second half: a site could not ask for a login the person
/// confirmed. With `acr_values` naming the person class, `prompt=login` or
/// `max_age`, the challenge tells the agent that the person must confirm
/// (an honest agent then never approves on its own: the agent's tests),
/// and an answer that is not the person's is refused, whatever the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_can_require_that_the_person_confirms() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 142).await;
    let site = Site::new(&bridge).await;
    // An agent that approves by policy whatever the challenge says.
    agent.set_answer(Answer::ApproveAs(ApprovedBy::Policy));
    let plain = login_claims(&bridge, &agent, &site, &[]).await.unwrap();
    assert_eq!(plain["acr"], acr::AGENT);
    assert!(!challenges(&agent).1, "no confirmation was asked");
    for extra in [
        ("acr_values", acr::PERSON),
        ("prompt", "login"),
        ("max_age", "600"),
    ] {
        let (url, _, _, _) = site.rp.auth_url(&[], &[extra]);
        let (_, page) = open_page(&bridge, &browser(), &url).await;
        assert!(page.contains("id=\"person-required\""), "{extra:?}: {page}");
        let refused = login_claims(&bridge, &agent, &site, &[extra])
            .await
            .unwrap_err();
        assert!(
            refused.contains("confirm the login yourself"),
            "{extra:?}: {refused}"
        );
        assert!(challenges(&agent).1, "{extra:?}: the challenge asked");
    }
    // The person confirms: the site gets the person class.
    agent.set_answer(Answer::Approve);
    let confirmed = login_claims(&bridge, &agent, &site, &[("acr_values", acr::PERSON)])
        .await
        .unwrap();
    assert_eq!(confirmed["acr"], acr::PERSON);

    // A session the agent approved by policy does not answer a request for
    // the person: the agent is asked again, for the person.
    agent.set_answer(Answer::ApproveAs(ApprovedBy::Policy));
    let person = browser();
    let (url, _, _, verifier) = site.rp.auth_url(&[], &[]);
    let code = browse(&bridge, &person, &url, &agent.ego_text())
        .await
        .code();
    site.rp.exchange(code, verifier).await.unwrap();
    let before = challenges(&agent).0;
    let (url, _, _, _) = site
        .rp
        .auth_url(&[], &[("acr_values", acr::PERSON), ("prompt", "none")]);
    let end = browse(&bridge, &person, &url, &agent.ego_text()).await;
    assert_eq!(end.params()["error"], "login_required");
    agent.set_answer(Answer::Approve);
    let (url, _, _, verifier) = site.rp.auth_url(&[], &[("acr_values", acr::PERSON)]);
    let code = browse(&bridge, &person, &url, &agent.ego_text())
        .await
        .code();
    let claims = id_claims(&site.rp.exchange(code, verifier).await.unwrap());
    assert_eq!(challenges(&agent), (before + 1, true));
    assert_eq!(claims["acr"], acr::PERSON);
}

/// A site that refreshes, with a back-channel logout receiver, logged in
/// once through an agent, on a bridge that allows `behind` key changes.
struct Refreshing {
    bridge: TestBridge,
    agent: TestAgent,
    site: Site,
    logouts: tokio::sync::mpsc::Receiver<String>,
    access: String,
    refresh: String,
}

impl Refreshing {
    async fn start(behind: u64, seed: u64) -> Self {
        let bridge = TestBridge::start_with(BridgeOptions {
            env: env(&[(
                "CYRCLES_BRIDGE_OIDC_MAX_CERTIFICATES_BEHIND",
                &behind.to_string(),
            )]),
            ..BridgeOptions::default()
        })
        .await;
        let agent = TestAgent::start(&bridge, seed).await;
        let (bcl, logouts) = crate::flow::logout_receiver().await;
        let (id, secret) = bridge
            .client(json!({
                "redirect_uris": [REDIRECT],
                "backchannel_logout_uri": bcl,
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .await;
        let secret = secret.unwrap();
        let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
        let site = Site { id, secret, rp };
        let (code, verifier) = site.code(&bridge, &agent).await;
        let tokens = site.rp.exchange(code, verifier).await.unwrap();
        Refreshing {
            access: tokens.access_token().secret().clone(),
            refresh: tokens.refresh_token().unwrap().secret().clone(),
            bridge,
            agent,
            site,
            logouts,
        }
    }

    /// Refreshes once the bridge's cache of the record has expired.
    async fn refresh(&mut self) -> Result<(), Value> {
        self.bridge.clock.advance(61);
        self.refresh = refresh(&self.bridge, &self.site, &self.refresh).await?;
        Ok(())
    }

    /// The refresh is refused for `why`, the grant's tokens are revoked
    /// and the site is told.
    async fn refused(mut self, why: &str) {
        let refused = self.refresh().await.unwrap_err();
        assert_eq!(refused["error"], "invalid_grant", "{refused}");
        assert!(
            refused["error_description"].as_str().unwrap().contains(why),
            "{refused}"
        );
        let told = crate::flow::next_logout_token(&self.bridge, &mut self.logouts).await;
        assert_eq!(told["aud"], self.site.id);
        assert_eq!(
            self.site.introspect(&self.bridge, &self.access).await["active"],
            false,
            "the grant's tokens are revoked"
        );
    }
}

/// Item 8, the key binding: a grant's refresh tokens kept working after
/// the ego's key was replaced (by a rotation, or by a recovery after the
/// device that logged in was stolen). Each grant now records the
/// certificate whose key approved it; once the ego's record is more than
/// `oidc.max_certificates_behind` certificates newer (0 by default), the
/// refresh is refused, the grant revoked and the site told by a
/// back-channel logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_the_ego_key_changed_ends_the_grant() {
    for behind in [0, 1] {
        let mut r = Refreshing::start(behind, 143 + behind).await;
        r.refresh().await.expect("same key");
        for _ in 0..behind {
            r.agent.rotate(r.bridge.clock.now()).await;
            r.refresh().await.expect("within the allowed key changes");
        }
        r.agent.rotate(r.bridge.clock.now()).await;
        r.refused("key was replaced").await;
    }
}

/// A recovery ends every grant made before it (docs/circle-authority.md,
/// P5): the key that approved the login may be a thief's, so however many
/// key changes `oidc.max_certificates_behind` allows, a certificate of a
/// new epoch refuses the refresh, revokes the grant and tells the site.
/// Rotations within the allowance still refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_a_recovery_ends_the_grant() {
    let mut r = Refreshing::start(5, 147).await;
    r.agent.rotate(r.bridge.clock.now()).await;
    r.refresh()
        .await
        .expect("a rotation within the allowed key changes");
    r.agent.recover(r.bridge.clock.now()).await;
    r.refused("recovered").await;
}

/// Item 2, the rest: a valid `prompt=none` request of a self-registered
/// client was answered by an automatic redirect to its URI
/// (`login_required`), so a throwaway client still made the bridge a
/// zero-click open redirector. An error the bridge decides on its own is
/// now shown on a page with a link there; the person follows it or not.
#[tokio::test]
async fn a_silent_error_for_a_self_registered_client_waits_for_a_click() {
    let bridge = TestBridge::start().await;
    let registered: Value = browser()
        .post(bridge.url("/register"))
        .json(&json!({
            "redirect_uris": ["https://evil.example/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let silent = |id: &str, redirect: &str, mode: &str| {
        let mut u = url::Url::parse(&bridge.url("/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", id)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("prompt", "none")
            .append_pair("response_mode", mode)
            .append_pair("state", "s1")
            .append_pair(
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            )
            .append_pair("code_challenge_method", "S256");
        u.to_string()
    };
    let stranger = registered["client_id"].as_str().unwrap();
    let res = browser()
        .get(silent(stranger, "https://evil.example/cb", "query"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none());
    let page = res.text().await.unwrap();
    assert!(!page.contains("autosubmit"), "{page}");
    assert!(
        page.contains("href=\"https://evil.example/cb?error=login_required"),
        "{page}"
    );
    // form_post: a button, not an auto-submitted form.
    let res = browser()
        .get(silent(stranger, "https://evil.example/cb", "form_post"))
        .send()
        .await
        .unwrap();
    let page = res.text().await.unwrap();
    assert!(!page.contains("autosubmit"), "{page}");
    assert!(page.contains("id=\"back\""), "{page}");
    assert!(page.contains("value=\"login_required\""), "{page}");

    // A client the operator registered gets it by redirect, as silent
    // authentication needs.
    let (id, _) = bridge.confidential().await;
    let res = browser()
        .get(silent(&id, REDIRECT, "query"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(query(&location(&res))["error"], "login_required");
}
