//! spin.toml declares every setting kiln reads, with Pyroscope's defaults,
//! and hands each one to the component (which reads them via wasi:config).

use kiln_core::config::{KEYS, Settings};

/// The `name = value` lines of `[section]` in spin.toml.
fn section(name: &str) -> Vec<(String, String)> {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml")).unwrap();
    let header = format!("[{name}]");
    manifest
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

#[test]
fn spin_variables_are_kilns_settings_with_pyroscopes_defaults() {
    let declared = section("variables");
    let mut names: Vec<&str> = declared.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    let mut keys = KEYS.to_vec();
    keys.sort();
    assert_eq!(names, keys);

    // `{ default = "7d" }` → `7d`
    let defaults: Vec<(String, String)> = declared
        .iter()
        .map(|(k, v)| {
            let value = v.trim_start_matches("{ default = \"").trim_end_matches("\" }");
            (k.clone(), value.to_string())
        })
        .collect();
    let from_manifest = Settings::from_vars(defaults.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    assert_eq!(format!("{from_manifest:?}"), format!("{:?}", Settings::default()));

    let passed = section("component.kiln.variables");
    let expected: Vec<(String, String)> =
        declared.iter().map(|(k, _)| (k.clone(), format!("\"{{{{ {k} }}}}\""))).collect();
    assert_eq!(passed, expected);
}
