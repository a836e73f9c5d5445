//! The `name` parameter: `app.suffix{key=value,...}` (Pyroscope's
//! `labelset` grammar). Values are taken verbatim up to `,` or `}`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A parsed `name`: the app name and the labels in braces.
#[derive(Debug, PartialEq, Eq)]
pub struct AppName {
    /// Everything before `{` (or the `__name__` label), suffix included.
    pub app: String,
    /// Labels with non-empty values, unique keys (the last one wins), in the
    /// order first given.
    pub labels: Vec<(String, String)>,
}

impl AppName {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `app` split at its last dot: (`prefix`, `suffix`); no dot means
    /// the whole name with suffix `cpu`.
    pub fn split_suffix(&self) -> (&str, &str) {
        self.app.rsplit_once('.').unwrap_or((&self.app, "cpu"))
    }
}

pub fn parse(name: &str) -> Result<AppName, String> {
    let (app, rest) = name.split_once('{').unwrap_or((name, ""));
    // Text after the closing brace is ignored; a missing one is tolerated.
    let inner = rest.split('}').next().unwrap_or_default();
    let mut app = app.trim().to_string();
    let mut labels: Vec<(String, String)> = Vec::new();
    for pair in inner.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err("label name is required".into());
        }
        if let Some(c) = key.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.')) {
            return Err(format!("invalid label name: {key}: character is not allowed: '{c}'"));
        }
        labels.retain(|(k, _)| k != key);
        if key == "__name__" {
            app = value.to_string();
        } else if !value.is_empty() {
            labels.push((key.into(), value.into()));
        }
    }
    if app.is_empty() {
        return Err("service name is required".into());
    }
    if let Some(c) = app.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))) {
        return Err(format!("invalid service name: {app}: character is not allowed: '{c}'"));
    }
    Ok(AppName { app, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Vec<(String, String)> {
        parse(name).unwrap().labels
    }

    #[test]
    fn app_and_suffix() {
        let n = parse(" myapp.cpu ").unwrap();
        assert_eq!((n.app.as_str(), n.labels.len()), ("myapp.cpu", 0));
        assert_eq!(n.split_suffix(), ("myapp", "cpu"));
        assert_eq!(parse("myapp").unwrap().split_suffix(), ("myapp", "cpu"));
        assert_eq!(parse("com.example.app").unwrap().split_suffix(), ("com.example", "app"));
        assert_eq!(parse("myapp.cpu{}").unwrap(), parse("myapp.cpu").unwrap());
        assert_eq!(parse("ns/app-1_x.wall").unwrap().app, "ns/app-1_x.wall");
    }

    #[test]
    fn labels_as_clients_send_them() {
        // Dots in keys, `/`, spaces, `+`, parentheses; unsorted (Node).
        let l = labels("app{otel.scope.name=com.grafana.pyroscope/go, env = a b ,v=1+1 (x),region=r}");
        let want = [("otel.scope.name", "com.grafana.pyroscope/go"), ("env", "a b"), ("v", "1+1 (x)"), ("region", "r")];
        assert_eq!(l, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(labels("app{__session_id__=77e4}"), [("__session_id__".into(), "77e4".into())]);
        // Last duplicate wins; empty values are absent; text after } ignored.
        assert_eq!(labels("app{a=1,b=,a=2}tail"), [("a".into(), "2".into())]);
        assert_eq!(labels("app{a=1"), [("a".into(), "1".into())]);
        assert_eq!(labels("app{9x=1,}"), [("9x".into(), "1".into())]);
        assert_eq!(parse("app{__name__=other}").unwrap().app, "other");
    }

    #[test]
    fn errors() {
        assert_eq!(parse("").unwrap_err(), "service name is required");
        assert_eq!(parse("{a=b}").unwrap_err(), "service name is required");
        assert_eq!(parse("app{=b}").unwrap_err(), "label name is required");
        assert_eq!(parse("my app").unwrap_err(), "invalid service name: my app: character is not allowed: ' '");
        assert_eq!(parse("app{a-b=1}").unwrap_err(), "invalid label name: a-b: character is not allowed: '-'");
    }
}
