//! The service binary over real HTTP: each test starts `walden-service` on 127.0.0.1:0 (it
//! prints its bound address), talks to it with reqwest, and where it matters kills it with
//! SIGKILL or stops it with SIGTERM and starts it again on the same directory. The upstream
//! the `/upstream` route forwards to is a small axum server inside the test.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use reqwest::{Client, Response};
use serde_json::Value;

struct Service {
    child: Child,
    stdout: BufReader<ChildStdout>,
    base: String,
}

impl Service {
    fn start(dir: &Path, args: &[&str]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_walden-service"))
            .arg("--dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start walden-service");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| {
            let _ = child.kill();
            panic!("unexpected first line {line:?}")
        });
        Service { base: base.to_owned(), child, stdout }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no shutdown code runs.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status and the rest of stdout.
    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (status, rest)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An upstream with `/ok`, `/fail` (500) and `/hang` (answers after 30 s).
async fn upstream() -> String {
    let app = Router::new()
        .route("/ok", get(|| async { "pong" }))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn header<'a>(res: &'a Response, name: &str) -> &'a str {
    res.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

async fn breaker_state(client: &Client, svc: &Service, name: &str) -> String {
    let health: Value = client.get(svc.url("/health")).send().await.unwrap().json().await.unwrap();
    let b = health["breakers"].as_array().unwrap().iter().find(|b| b["name"] == name);
    b.unwrap_or_else(|| panic!("no breaker {name} in {health}"))["state"].as_str().unwrap().into()
}

const NO_LIMIT: &[&str] = &["--rate-per-minute", "0"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_answer_412_when_the_etag_or_existence_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), NO_LIMIT);
    let c = Client::new();
    let doc = svc.url("/docs/users/ada");

    let res = c.put(&doc).header("if-none-match", "*").body(r#"{"n":1}"#).send().await.unwrap();
    assert_eq!(res.status(), 201, "create-only on an absent key creates");
    let v1 = header(&res, "etag").to_owned();
    let res = c.put(&doc).header("if-none-match", "*").body(r#"{"n":9}"#).send().await.unwrap();
    assert_eq!(res.status(), 412, "create-only on an existing key");

    let res = c.get(&doc).send().await.unwrap();
    assert_eq!((res.status().as_u16(), header(&res, "etag")), (200, v1.as_str()));
    assert_eq!(res.text().await.unwrap(), r#"{"n":1}"#);
    let res = c.get(&doc).header("if-none-match", &v1).send().await.unwrap();
    assert_eq!(res.status(), 304);

    let res = c.put(&doc).header("if-match", &v1).body(r#"{"n":2}"#).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v2 = header(&res, "etag").to_owned();
    assert_ne!(v1, v2);
    let res = c.put(&doc).header("if-match", &v1).body(r#"{"n":3}"#).send().await.unwrap();
    assert_eq!(res.status(), 412, "a stale ETag loses");
    let res = c.delete(&doc).header("if-match", &v1).send().await.unwrap();
    assert_eq!(res.status(), 412);
    let res = c.get(&doc).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), r#"{"n":2}"#, "no failed precondition wrote anything");

    let res = c.delete(&doc).header("if-match", &v2).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(c.get(&doc).send().await.unwrap().status(), 404);
    let res = c.put(&doc).header("if-match", "*").body("{}").send().await.unwrap();
    assert_eq!(res.status(), 412, "If-Match: * needs the document to exist");
    let res = c.put(&doc).body("not json").send().await.unwrap();
    assert_eq!(res.status(), 400);
}

/// Needs versions that never repeat for a key (a re-created document starts above every
/// version the key had), which the core store provides once that change has landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn an_etag_never_matches_a_document_recreated_at_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), NO_LIMIT);
    let c = Client::new();
    let doc = svc.url("/docs/users/bob");
    let res = c.put(&doc).body(r#"{"first":true}"#).send().await.unwrap();
    let old = header(&res, "etag").to_owned();
    assert_eq!(c.delete(&doc).send().await.unwrap().status(), 204);
    let res = c.put(&doc).body(r#"{"second":true}"#).send().await.unwrap();
    assert_ne!(header(&res, "etag"), old, "a new document gets a new ETag");
    let res = c.put(&doc).header("if-match", &old).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 412, "the old document's ETag must not match the new one");
    let res = c.delete(&doc).header("if-match", &old).send().await.unwrap();
    assert_eq!(res.status(), 412);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_key_gets_429_with_ratelimit_headers_and_other_keys_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--rate-per-minute", "3", "--limit-key", "api-key"];
    let svc = Service::start(dir.path(), &args);
    let c = Client::new();
    let get = |key: &'static str| c.get(svc.url("/docs/c/x")).header("x-api-key", key).send();
    for remaining in ["2", "1", "0"] {
        let res = get("alice").await.unwrap();
        assert_eq!(res.status(), 404, "allowed through to the (empty) store");
        assert_eq!(header(&res, "ratelimit-remaining"), remaining);
    }
    let res = get("alice").await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(header(&res, "ratelimit-limit"), "3");
    assert_eq!(header(&res, "ratelimit-remaining"), "0");
    assert_eq!(header(&res, "retry-after"), "20", "3 per minute: one request per 20 s");
    let reset: u64 = header(&res, "ratelimit-reset").parse().unwrap();
    assert!((59..=60).contains(&reset), "reset {reset}");
    assert_eq!(get("bob").await.unwrap().status(), 404, "bob has his own quota");
    for _ in 0..5 {
        assert_eq!(c.get(svc.url("/health")).send().await.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_and_timeouts_open_the_breaker_which_answers_503() {
    let up = upstream().await;
    let c = Client::new();
    for (path, failing_status) in [("/upstream/fail", 502), ("/upstream/hang", 504)] {
        let dir = tempfile::tempdir().unwrap();
        let args = ["--upstream", &up, "--upstream-timeout-ms", "200", "--rate-per-minute", "0"];
        let svc = Service::start(dir.path(), &args);
        assert_eq!(
            c.get(svc.url("/upstream/ok")).send().await.unwrap().text().await.unwrap(),
            "pong"
        );
        for _ in 0..3 {
            assert_eq!(c.get(svc.url(path)).send().await.unwrap().status(), failing_status);
        }
        // A call cancelled by the timeout is reported from a spawned task: wait for it.
        let mut state = String::new();
        for _ in 0..500 {
            state = breaker_state(&c, &svc, "upstream").await;
            if state == "open" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state, "open", "after three {failing_status}s");
        let res = c.get(svc.url("/upstream/ok")).send().await.unwrap();
        assert_eq!(res.status(), 503);
        let retry: u64 = header(&res, "retry-after").parse().unwrap();
        assert!((59..=60).contains(&retry), "retry-after {retry}");
        assert_eq!(breaker_state(&c, &svc, "documents").await, "closed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_documents_spent_limits_and_open_breakers_are_still_there() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--upstream", &up, "--rate-per-minute", "3", "--limit-key", "api-key"];
    let c = Client::new();
    let svc = Service::start(dir.path(), &args);
    let doc = svc.url("/docs/orders/42");
    let res = c.put(&doc).header("x-api-key", "writer").body(r#"{"total":1250}"#).send().await;
    let etag = header(&res.unwrap(), "etag").to_owned();
    for _ in 0..3 {
        c.get(svc.url("/docs/c/x")).header("x-api-key", "spender").send().await.unwrap();
    }
    for key in ["f1", "f2", "f3"] {
        let res = c.get(svc.url("/upstream/fail")).header("x-api-key", key).send().await;
        assert_eq!(res.unwrap().status(), 502);
    }
    assert_eq!(breaker_state(&c, &svc, "upstream").await, "open");
    svc.kill9();

    let svc = Service::start(dir.path(), &args);
    let res = c.get(svc.url("/docs/orders/42")).header("x-api-key", "reader").send().await.unwrap();
    assert_eq!((res.status().as_u16(), header(&res, "etag")), (200, etag.as_str()));
    assert_eq!(res.text().await.unwrap(), r#"{"total":1250}"#);
    let res = c.get(svc.url("/docs/c/x")).header("x-api-key", "spender").send().await.unwrap();
    assert_eq!(res.status(), 429, "the spent quota survived SIGKILL");
    let res = c.get(svc.url("/upstream/ok")).header("x-api-key", "f4").send().await.unwrap();
    assert_eq!(res.status(), 503, "the open breaker survived SIGKILL");
    assert!(header(&res, "retry-after").parse::<u64>().unwrap() <= 60);
    assert_eq!(breaker_state(&c, &svc, "upstream").await, "open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_gracefully_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new();
    let svc = Service::start(dir.path(), NO_LIMIT);
    let res = c.put(svc.url("/docs/k/v")).body("[1,2,3]").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (status, stdout) = svc.terminate();
    assert!(status.success(), "exit status {status}");
    assert_eq!(stdout.trim(), "store closed");
    let svc = Service::start(dir.path(), NO_LIMIT);
    let res = c.get(svc.url("/docs/k/v")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "[1,2,3]");
}
