//! Shared test helpers: start the real server on port 0 over a real database.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{json, Value};
use webcall::{Application, Config};

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789-abcdefghijklmnop";
pub const REGISTRATION_SECRET: &str = "let-me-in-please";
pub const TURN_SECRET: &str = "test-turn-secret";
pub const PASSWORD: &str = "correct horse battery";

/// A running server and a client pointed at it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The embedded relay's UDP/TCP port, 0 when it does not run.
    turn_port: u16,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// The base variables every test server gets; `extra` overrides them.
pub fn test_vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("JWT_SECRET", JWT_SECRET),
        ("REGISTRATION_SECRET", REGISTRATION_SECRET),
        ("TURN_SECRET", TURN_SECRET),
        ("TURN_LISTEN", "127.0.0.1:0"),
        ("TURN_PUBLIC_IP", "127.0.0.1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    vars
}

/// Starts a server on a fresh SQLite file (unless `extra` names a `DATABASE_URL`).
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = test_vars(extra);
    vars.entry("DATABASE_URL".into())
        .or_insert_with(|| format!("sqlite://{}", dir.path().join("webcall.db").display()));
    let config = Config::from_vars(&vars).unwrap();
    let app = Application::build(&config).await.unwrap();
    let addr = app.local_addr();
    let turn_port = app.relay().map_or(0, |relay| relay.udp_addr().port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        turn_port,
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

impl TestApp {
    pub fn turn_port(&self) -> u16 {
        self.turn_port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, username: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "username": username, "password": PASSWORD, "secret": REGISTRATION_SECRET}),
        )
        .await
    }

    pub async fn login_username(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Registers `username` and returns a fresh access token for it.
    pub async fn user_token(&self, username: &str) -> String {
        let created = self
            .register(&format!("{username}@example.org"), username)
            .await;
        assert_eq!(created.status(), 201);
        let login = self.login_username(username, PASSWORD).await;
        assert_eq!(login.status(), 200);
        login.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_authed(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Reads an error response: (status, code, field).
pub async fn error_of(response: reqwest::Response) -> (u16, String, Option<String>) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error bodies are JSON");
    let error = &body["error"];
    assert!(
        error["message"].is_string(),
        "every error has a message: {body}"
    );
    (
        status,
        error["code"]
            .as_str()
            .expect("every error has a code")
            .to_owned(),
        error["field"].as_str().map(str::to_owned),
    )
}
