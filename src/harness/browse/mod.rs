//! `sluicegate serve`: the store over HTTP, for reading runs in a browser. An index of every run
//! (newest first, with its verdict and summary), each run's page linking its files, and the files
//! themselves. Nothing outside the store is served ([`safe_path`]); binding to loopback is the
//! caller's default.

mod pages;
mod runs;
mod safe_path;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use safe_path::{Refusal, resolve};

/// Serves the store at `store` on `listener` until the task is dropped or the listener fails.
///
/// # Errors
/// The store cannot be found, or serving fails.
pub async fn serve_store(store: &Path, listener: TcpListener) -> io::Result<()> {
    let root = Arc::new(store.canonicalize()?);
    let app = Router::new()
        .route("/", get(index))
        .route("/runs/{*path}", get(run_path))
        .with_state(root);
    axum::serve(listener, app).await
}

async fn index(State(root): State<Arc<PathBuf>>) -> Html<String> {
    let root = Arc::clone(&root);
    let page =
        tokio::task::spawn_blocking(move || pages::index_page(&root, &runs::list_runs(&root)))
            .await
            .unwrap_or_else(|_| "the index could not be built".to_owned());
    Html(page)
}

/// A run folder (its page) or a file in the store.
async fn run_path(State(root): State<Arc<PathBuf>>, UrlPath(path): UrlPath<String>) -> Response {
    let resolved = match resolve(&root, &path) {
        Ok(resolved) => resolved,
        Err(Refusal::Outside) => {
            return (StatusCode::FORBIDDEN, "outside the store\n").into_response();
        }
        Err(Refusal::Missing) => {
            return (StatusCode::NOT_FOUND, "no such run or file\n").into_response();
        }
    };
    if resolved.is_dir() {
        // Relative links on the run page need the trailing slash.
        if !path.ends_with('/') {
            return Redirect::permanent(&format!("/runs/{path}/")).into_response();
        }
        let Some((workload, stamp)) = run_names(&root, &resolved) else {
            return (StatusCode::NOT_FOUND, "not a run folder\n").into_response();
        };
        let page = tokio::task::spawn_blocking(move || {
            let entry = runs::read_run(&root, &workload, &stamp);
            pages::run_page(&resolved, &entry)
        })
        .await
        .unwrap_or_else(|_| "the page could not be built".to_owned());
        return Html(page).into_response();
    }
    match tokio::fs::read(&resolved).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(&resolved)),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "unreadable\n").into_response(),
    }
}

/// `(workload, stamp)` if `dir` is `<root>/<workload>/<stamp>`.
fn run_names(root: &Path, dir: &Path) -> Option<(String, String)> {
    let relative = dir.strip_prefix(root).ok()?;
    let mut parts = relative.iter();
    let workload = parts.next()?.to_str()?.to_owned();
    let stamp = parts.next()?.to_str()?.to_owned();
    parts.next().is_none().then_some((workload, stamp))
}

/// Text files as UTF-8 text (never as HTML, so node output cannot script the page).
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// The status line and body of a raw GET, so the path goes out exactly as written.
    async fn get(port: u16, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response.lines().next().unwrap_or("").to_owned();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn runs_and_their_files_are_served_and_nothing_outside_the_store() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        let store = tempfile::tempdir().unwrap();
        let run = store.path().join("echo/20261124T113050.123Z");
        std::fs::create_dir_all(run.join("node-logs")).unwrap();
        std::fs::write(run.join("results.json"), "{\"valid?\": true}").unwrap();
        std::fs::write(run.join("summary.txt"), "fine\nops 7").unwrap();
        std::fs::write(run.join("node-logs/n0.log"), "<script>").unwrap();
        std::os::unix::fs::symlink(outside.path(), store.path().join("out")).unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let root = store.path().to_owned();
        let server = tokio::spawn(async move { super::serve_store(&root, listener).await });
        let checks = async {
            let (status, body) = get(port, "/").await;
            assert!(status.contains("200"), "{status}");
            assert!(body.contains("<td class=\"verdict valid\">valid</td>"));
            assert!(body.contains("href=\"/runs/echo/20261124T113050.123Z/\""));
            let (status, body) = get(port, "/runs/echo/20261124T113050.123Z/").await;
            assert!(status.contains("200"), "{status}");
            assert!(body.contains("href=\"node-logs/n0.log\""));
            let (status, _) = get(port, "/runs/echo/20261124T113050.123Z").await;
            assert!(status.contains("308"), "{status}");
            let (status, body) =
                get(port, "/runs/echo/20261124T113050.123Z/node-logs/n0.log").await;
            assert!(status.contains("200"), "{status}");
            assert_eq!(body, "<script>");
            for refused in [
                "/runs/../../../etc/passwd",
                "/runs/echo/..%2f..%2f..%2fetc/passwd",
                "/runs/%2e%2e/%2e%2e/etc/passwd",
                "/runs/out/secret.txt",
                "/runs//etc/passwd",
            ] {
                let (status, body) = get(port, refused).await;
                assert!(
                    status.contains("403") || status.contains("404"),
                    "{refused}: {status}"
                );
                assert!(
                    !body.contains("secret") && !body.contains("root:"),
                    "{refused}"
                );
            }
            let (status, _) = get(port, "/runs/out/secret.txt").await;
            assert!(
                status.contains("403"),
                "a symlink out of the store: {status}"
            );
        };
        tokio::time::timeout(Duration::from_secs(20), checks)
            .await
            .expect("the server answers");
        server.abort();
    }
}
