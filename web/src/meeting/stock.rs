//! Serving a directory holding the stock jitsi-meet web app.
//!
//! The stock app is built to sit behind nginx: static files by path,
//! `index.html` for any room, and server-side includes
//! (`<!--#include virtual="..." -->`) that also inline `config.js` and
//! `interface_config.js`. Ours replace the directory's in both places.

use std::path::PathBuf;

/// The stock app's directory.
pub(crate) struct StockApp {
    root: PathBuf,
}

impl StockApp {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Reads a regular file at the slash-separated `rel` path, refusing hidden
    /// segments and `..` so nothing outside the directory is reachable.
    pub(crate) async fn read(&self, rel: &str) -> Option<Vec<u8>> {
        let rel = rel.trim_start_matches('/');
        let mut path = self.root.clone();
        for seg in rel.split('/') {
            if seg.is_empty() || seg.starts_with('.') || seg.contains(['\\', '\0']) {
                return None;
            }
            path.push(seg);
        }
        let meta = tokio::fs::metadata(&path).await.ok()?;
        if !meta.is_file() {
            return None;
        }
        tokio::fs::read(&path).await.ok()
    }

    /// The app's `index.html` with its includes expanded; `ours` answers for
    /// the generated files (`config.js`, `interface_config.js`) first.
    pub(crate) async fn index(&self, ours: impl Fn(&str) -> Option<String>) -> Option<String> {
        let html = String::from_utf8(self.read("index.html").await?).ok()?;
        Some(self.expand_includes(&html, ours).await)
    }

    /// One level of `<!--#include virtual="x" -->`, as nginx's `ssi on` does
    /// for the stock app; a missing file includes nothing.
    async fn expand_includes(&self, html: &str, ours: impl Fn(&str) -> Option<String>) -> String {
        const OPEN: &str = "<!--#include virtual=\"";
        const CLOSE: &str = "-->";
        let mut out = String::with_capacity(html.len());
        let mut rest = html;
        while let Some(start) = rest.find(OPEN) {
            out.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len()..];
            let (Some(quote), Some(end)) = (after.find('"'), after.find(CLOSE)) else {
                out.push_str(&rest[start..]);
                return out;
            };
            let target = after[..quote].trim_start_matches('/');
            let target = target.split('?').next().unwrap_or(target);
            match ours(target) {
                Some(text) => out.push_str(&text),
                None => {
                    if let Some(bytes) = self.read(target).await {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
            }
            rest = &after[end + CLOSE.len()..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn includes_prefer_ours_and_skip_missing() {
        let dir = std::env::temp_dir().join(format!("oxbridge-stock-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("base.html"), "<base href=\"/\">").unwrap();
        std::fs::write(dir.join("config.js"), "var config = {theirs: 1};").unwrap();
        let app = StockApp::new(dir.clone());
        let html = "<head><!--#include virtual=\"base.html\" --><!--#include virtual=\"missing.html\" -->\
                    <script><!--#include virtual=\"/config.js\" --></script></head>";
        let ours = |t: &str| (t == "config.js").then(|| "var config = {ours: 1};".to_string());
        let out = app.expand_includes(html, ours).await;
        assert_eq!(
            out,
            "<head><base href=\"/\"><script>var config = {ours: 1};</script></head>"
        );
        assert!(app.read("../etc/passwd").await.is_none());
        assert!(app.read(".git/config").await.is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
