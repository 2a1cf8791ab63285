//! The login pages' other paths (form_post, cancel, resend, expiry),
//! registration management (RFC 7592), and serving TLS directly.

use openidconnect::TokenResponse;
use serde_json::{Value, json};

use crate::common::{
    Answer, BridgeOptions, REDIRECT, Rp, TestAgent, TestBridge, browse, browser, input, location,
    query, start_login,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_post_response_mode() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 51).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();
    // A first login grants consent; the second answers with form_post at once.
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(&bridge, &b, &url, &agent.ego_text()).await.code();
    let (url, csrf, nonce, verifier) = rp.auth_url(&[], &[("response_mode", "form_post")]);
    let res = b.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("form-action http://127.0.0.1:9"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{REDIRECT}\"")));
    assert_eq!(
        input(&html, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(input(&html, "iss").as_deref(), Some(bridge.issuer.as_str()));
    let code = input(&html, "code").unwrap();
    let tokens = rp.exchange(code, verifier).await.unwrap();
    tokens
        .id_token()
        .unwrap()
        .claims(&rp.client.id_token_verifier(), &nonce)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_resend_and_expiry() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 52).await;
    agent.set_answer(Answer::Silent);
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let b = browser();
    let (url, state, _, _) = rp.auth_url(&[], &[]);
    let (ix, res, csrf) = start_login(&bridge, &b, &url, &agent.ego_text()).await;
    let wait = location(&res);
    let page = b
        .get(bridge.url(&wait))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"match-code\""));
    // The page says where and how to approve, with the number to type.
    let code = page
        .split("id=\"match-code\" aria-label=\"match code\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_string();
    assert!(
        page.contains(&format!("<code>cyrcles approve ID --code {code}</code>")),
        "{page}"
    );
    // Resend: a new challenge, the old one cancelled.
    let cid = wait.rsplit('/').next().unwrap().to_string();
    let res = b
        .post(bridge.url(&format!("{ix}/resend")))
        .form(&[("csrf", csrf.as_str()), ("challenge_id", cid.as_str())])
        .send()
        .await
        .unwrap();
    let wait2 = location(&res);
    assert_ne!(wait2, wait);
    let old: Value = b
        .get(bridge.url(&format!("{wait}/status")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(old["status"], "cancelled");
    // Expiry: nobody answers for 121 s.
    bridge.clock.advance(121);
    let s: Value = b
        .get(bridge.url(&format!("{wait2}/status")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "expired");
    let page = b
        .get(bridge.url(&format!("{wait2}/continue")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("The request expired"), "{page}");
    assert!(page.contains("Try again"));
    // Cancel: back to the site with access_denied and its state.
    let res = b
        .post(bridge.url(&format!("{ix}/cancel")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let q = query(&location(&res));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(&q["state"], state.secret());
    // The interaction is finished: its pages are gone.
    assert_eq!(b.get(bridge.url(&ix)).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_its_management() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 53).await;
    let b = browser();
    let res = b
        .post(bridge.url("/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT],
            "client_name": "Registered Site",
            "id_token_signed_response_alg": "EdDSA",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let reg: Value = res.json().await.unwrap();
    let (id, secret, token, uri) = (
        reg["client_id"].as_str().unwrap().to_string(),
        reg["client_secret"].as_str().unwrap().to_string(),
        reg["registration_access_token"]
            .as_str()
            .unwrap()
            .to_string(),
        reg["registration_client_uri"].as_str().unwrap().to_string(),
    );
    assert_eq!(reg["client_secret_expires_at"], 0);
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    // It works, with EdDSA ID tokens.
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let (url, _, nonce, verifier) = rp.auth_url(&[], &[]);
    let code = browse(&bridge, &b, &url, &agent.ego_text()).await.code();
    let tokens = rp.exchange(code, verifier).await.unwrap();
    let v = rp
        .client
        .id_token_verifier()
        .set_allowed_algs(vec![openidconnect::core::CoreJwsSigningAlgorithm::EdDsa]);
    tokens.id_token().unwrap().claims(&v, &nonce).unwrap();
    // Read, update, delete.
    let got: Value = b
        .get(&uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["client_name"], "Registered Site");
    assert!(
        got.get("client_secret").is_none(),
        "secrets are stored hashed and never shown again"
    );
    let mut update = got.clone();
    update["client_name"] = json!("Renamed Site");
    let res = b
        .put(&uri)
        .bearer_auth(&token)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["client_name"],
        "Renamed Site"
    );
    assert_eq!(
        b.delete(&uri)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        b.delete(&uri)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        b.get(&uri)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Its tokens died with it.
    let v: Value = b
        .post(bridge.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "invalid_client");

    // Registration can be turned off.
    let closed = TestBridge::start_with(BridgeOptions {
        env: vec![(
            "CYRCLES_BRIDGE_OIDC_DYNAMIC_REGISTRATION".into(),
            "false".into(),
        )],
        ..Default::default()
    })
    .await;
    let res = b
        .post(closed.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let d: Value = b
        .get(closed.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(d.get("registration_endpoint").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_directly() {
    let dir = std::env::temp_dir().join(format!("cyrcles-tls-{}", cyrcles_bridge::random::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let bridge = TestBridge::start_with(BridgeOptions {
        env: vec![
            (
                "CYRCLES_BRIDGE_HTTP_TLS_CERT".into(),
                dir.join("cert.pem").display().to_string(),
            ),
            (
                "CYRCLES_BRIDGE_HTTP_TLS_KEY".into(),
                dir.join("key.pem").display().to_string(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let port = bridge.state.settings.listen.port();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let res = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("strict-transport-security").is_some(),
        "HSTS under TLS"
    );
    // Plain HTTP on the TLS port does not get through.
    assert!(
        browser()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
}
