//! Tenant IDs from an `X-Scope-OrgID` value, validated as Pyroscope (dskit's
//! `tenant` package) validates them (spec `ingest.md` §2). Every stored key
//! starts with the tenant, and these rules are also what keeps keys short
//! and free of the `/` that separates key parts.

use alloc::format;

use crate::error::{Error, Result};

/// The tenant every request runs as in single-tenant mode.
pub const DEFAULT_TENANT: &str = "anonymous";

/// Longest tenant ID, in bytes.
pub const MAX_TENANT_LEN: usize = 150;

/// The single tenant an `X-Scope-OrgID` value names. `a:meta` is tenant
/// `a`; `a|b` (several tenants) is refused unless every part names the same
/// tenant, as dskit's `TenantID` does.
pub fn single(org_id: &str) -> Result<&str> {
    if org_id.is_empty() {
        return Err(no_org_id());
    }
    let mut parts = org_id.split('|').map(strip_metadata);
    let first = parts.next().unwrap_or_default();
    validate(first)?;
    if parts.any(|p| p != first) {
        return Err(Error::Unauthenticated("multiple org IDs present".into()));
    }
    Ok(first)
}

/// The error of a request without a tenant in multi-tenant mode.
pub fn no_org_id() -> Error {
    Error::Unauthenticated("no org id".into())
}

/// dskit's rules, checked in its order: characters, length, `.`/`..`.
pub fn validate(id: &str) -> Result<()> {
    if let Some(&bad) = id.as_bytes().iter().find(|&&b| !is_tenant_byte(b)) {
        // Go prints the offending byte with `%c`, i.e. as the code point of
        // that byte value.
        return Err(Error::Unauthenticated(format!(
            "tenant ID '{id}' contains unsupported character '{}'",
            char::from(bad)
        )));
    }
    if id.len() > MAX_TENANT_LEN {
        return Err(Error::Unauthenticated(format!("tenant ID is too long: max {MAX_TENANT_LEN} characters")));
    }
    if id == "." || id == ".." {
        return Err(Error::Unauthenticated("tenant ID is '.' or '..'".into()));
    }
    Ok(())
}

/// `tenant:key=value` carries metadata after the first `:`; it is not part
/// of the tenant.
fn strip_metadata(part: &str) -> &str {
    part.split_once(':').map_or(part, |(tenant, _)| tenant)
}

fn is_tenant_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'!' | b'-' | b'_' | b'.' | b'*' | b'\'' | b'(' | b')')
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};

    fn message(r: Result<impl core::fmt::Debug>) -> String {
        match r {
            Err(Error::Unauthenticated(m)) => m,
            other => panic!("expected unauthenticated, got {other:?}"),
        }
    }

    #[test]
    fn accepts_every_allowed_character() {
        let all_allowed = "azAZ09!-_.*'()";
        assert_eq!(single(all_allowed).unwrap(), all_allowed);
        assert_eq!(single("...").unwrap(), "...");
        let longest = "x".repeat(MAX_TENANT_LEN);
        assert_eq!(single(&longest).unwrap(), longest);
    }

    #[test]
    fn refuses_what_dskit_refuses() {
        assert_eq!(message(single("")), "no org id");
        assert_eq!(message(single("a/b")), "tenant ID 'a/b' contains unsupported character '/'");
        assert_eq!(message(single("a b")), "tenant ID 'a b' contains unsupported character ' '");
        assert_eq!(message(single("caf\u{e9}")), "tenant ID 'caf\u{e9}' contains unsupported character '\u{c3}'");
        assert_eq!(message(single(&"x".repeat(151))), "tenant ID is too long: max 150 characters");
        assert_eq!(message(single(".")), "tenant ID is '.' or '..'");
        assert_eq!(message(single("..")), "tenant ID is '.' or '..'");
        // Characters are checked before the length.
        let long_and_bad = "/".repeat(151);
        assert!(message(single(&long_and_bad)).contains("unsupported character '/'"));
    }

    #[test]
    fn metadata_and_several_tenants() {
        assert_eq!(single("team-a:product=k6").unwrap(), "team-a");
        assert_eq!(single("a|a:x=y").unwrap(), "a");
        assert_eq!(message(single("a|b")), "multiple org IDs present");
        // The first part is validated before the others are compared.
        assert!(message(single("a/|b")).contains("unsupported character"));
    }

    #[test]
    fn error_kind_is_unauthenticated() {
        let e = single("").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unauthenticated);
        assert_eq!(e.to_string(), "no org id");
    }
}
