//! `GET /logs/PATH`: the node's own log files under `node_log_dir`, with
//! directory listings like the file server upstream's kubelet uses for
//! `/var/log`. Never leaves the directory (`..` is refused).

use super::{full, text, Body};
use http::{Response, StatusCode};
use std::path::{Component, Path, PathBuf};

/// The file or directory `rel` names under `root`, if it stays inside.
pub fn resolve(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel.trim_start_matches('/'));
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The HTML listing of names (directories end with `/`), sorted.
pub fn listing(mut names: Vec<String>) -> String {
    names.sort();
    let mut out = String::from("<pre>\n");
    for n in names {
        let escaped = n.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;");
        out.push_str(&format!("<a href=\"{escaped}\">{escaped}</a>\n"));
    }
    out.push_str("</pre>\n");
    out
}

pub async fn serve(root: &Path, rel: &str, _trailing_slash: bool) -> Response<Body> {
    let Some(path) = resolve(root, rel) else {
        return text(StatusCode::BAD_REQUEST, "invalid URL path\n");
    };
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {e}\n", path.display())),
    };
    if meta.is_dir() {
        let mut names = Vec::new();
        match tokio::fs::read_dir(&path).await {
            Ok(mut rd) => {
                while let Ok(Some(entry)) = rd.next_entry().await {
                    let mut name = entry.file_name().to_string_lossy().into_owned();
                    if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                        name.push('/');
                    }
                    names.push(name);
                }
            }
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {e}\n", path.display())),
        }
        let mut resp = Response::new(full(listing(names)));
        resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=utf-8"));
        return resp;
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut resp = Response::new(full(bytes));
            resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
            resp
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {e}\n", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside_the_directory() {
        let root = Path::new("/var/log/coracle");
        assert_eq!(resolve(root, "a/b.log"), Some(PathBuf::from("/var/log/coracle/a/b.log")));
        assert_eq!(resolve(root, ""), Some(PathBuf::from("/var/log/coracle")));
        assert_eq!(resolve(root, "../etc/shadow"), None);
        assert_eq!(resolve(root, "a/../../x"), None);
    }

    #[test]
    fn lists_sorted_and_escaped() {
        assert_eq!(listing(vec!["b.log".into(), "a/".into(), "<x>".into()]), "<pre>\n<a href=\"&lt;x&gt;\">&lt;x&gt;</a>\n<a href=\"a/\">a/</a>\n<a href=\"b.log\">b.log</a>\n</pre>\n");
    }
}
