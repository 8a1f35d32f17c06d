//! The HTTP client side shared by the end-to-end tests of both frameworks: a reqwest client
//! with its own cookie jar, a GET that asserts success, and the session cookie's value.
#![allow(dead_code)]

use reqwest::cookie::{CookieStore, Jar};
use reqwest::Client;
use std::sync::Arc;

/// A client with a cookie jar of its own (one browser).
pub fn client() -> (Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let client = Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    (client, jar)
}

/// GETs `base` + `path`, asserts a success status, returns the body.
pub async fn get(client: &Client, base: &str, path: &str) -> String {
    let res = client.get(format!("{base}{path}")).send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.text().await.unwrap()
}

/// The value of the `id` cookie the jar holds for `base`.
pub fn session_cookie(jar: &Jar, base: &str) -> Option<String> {
    let cookies = jar.cookies(&base.parse().unwrap())?;
    cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix("id="))
        .map(str::to_owned)
}
