//! Symbol normalisation: names the JVM or a library generates per process
//! (reflection accessors, lambda classes, unpacked native libraries, CGLIB
//! proxies) are folded to one stable name, as Pyroscope does, so profiles
//! from different processes and restarts merge. Hand-written matchers: the
//! check runs on every symbol and almost never matches.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;

/// The normalised form of `s` (borrowed when nothing matches).
pub(super) fn normalize(s: &str) -> Cow<'_, str> {
    if let Some(rest) = s.strip_prefix(ACCESSOR)
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Cow::Owned(format!("{ACCESSOR}_"));
    }
    if (s.ends_with(".so") || s.ends_with(".so (deleted)"))
        && let Some(lib) = native_library(s)
    {
        return Cow::Borrowed(lib);
    }
    // Both remaining patterns contain "$$", which ordinary names rarely do.
    if !s.as_bytes().windows(2).any(|w| w == b"$$") {
        return Cow::Borrowed(s);
    }
    if let Some(at) = s.rfind(LAMBDA)
        && at > 0
        && is_lambda_suffix(&s[at + LAMBDA.len()..])
    {
        return Cow::Owned(format!("{}_", &s[..at + LAMBDA.len()]));
    }
    if let Some(at) = s.rfind(CGLIB)
        && at > 0
    {
        return Cow::Owned(format!("{}_", &s[..at + CGLIB.len()]));
    }
    Cow::Borrowed(s)
}

const ACCESSOR: &str = "jdk/internal/reflect/GeneratedMethodAccessor";
const LAMBDA: &str = "$$Lambda";
const CGLIB: &str = "$$EnhancerBySpringCGLIB$$";
const ASYNC_PROFILER_BUILD: &str = "17b9a1d8156277a98ccc871afa9a8f69215f92";

/// What follows `$$Lambda` in a generated lambda class name:
/// `$<n>/<hex>`, `$<n>.<hex>`, `.0x<hex>`, `/<digits>` or `<digits>`.
fn is_lambda_suffix(s: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = |s: &str| {
        let s = s.strip_prefix("0x").unwrap_or(s);
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    if let Some(rest) = s.strip_prefix('$') {
        return rest.split_once(['/', '.']).is_some_and(|(n, h)| digits(n) && hex(h));
    }
    if let Some(rest) = s.strip_prefix(".0x") {
        return hex(rest);
    }
    if let Some(rest) = s.strip_prefix('/') {
        return digits(rest);
    }
    digits(s)
}

/// Native libraries unpacked to a per-process file name.
fn native_library(s: &str) -> Option<&'static str> {
    let s = s.strip_prefix("./tmp/").or_else(|| s.strip_prefix("/tmp/")).unwrap_or(s);
    let s = s.strip_suffix(" (deleted)").unwrap_or(s);
    let s = s.strip_suffix(".so")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix("libzstd-jni-") {
        // <a.b.c>-<digits>
        let (version, build) = rest.split_once('-')?;
        let mut parts = version.split('.');
        let ok = (0..3).all(|_| parts.next().is_some_and(digits)) && parts.next().is_none() && digits(build);
        return ok.then_some("libzstd-jni-_.so");
    }
    if let Some(rest) = s.strip_prefix("libasyncProfiler-") {
        let (platform, build) = rest.rsplit_once('-')?;
        let ok = matches!(platform, "linux-arm64" | "linux-musl-x64" | "linux-x64" | "macos")
            && build == ASYNC_PROFILER_BUILD;
        return ok.then_some("libasyncProfiler-_.so");
    }
    let rest = s.strip_prefix("lib").unwrap_or(s).strip_prefix("amazonCorrettoCryptoProvider")?;
    let rest = rest.strip_prefix("NativeLibraries.").unwrap_or(rest);
    let (id, tail) = rest.split_at_checked(16)?;
    let ok = id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && matches!(tail, "" | "/libcrypto" | "/libamazonCorrettoCryptoProvider");
    ok.then_some("libamazonCorrettoCryptoProvider_.so")
}

/// Writes `class.method`, the frame name Pyroscope gives a JFR method, into
/// `out` (cleared first; reused so known names cost no allocation).
pub(super) fn frame_name(class: &str, method: &str, out: &mut String) {
    out.clear();
    out.push_str(&normalize(class));
    out.push('.');
    out.push_str(&normalize(method));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_generated_names() {
        let cases = [
            ("jdk/internal/reflect/GeneratedMethodAccessor31", "jdk/internal/reflect/GeneratedMethodAccessor_"),
            ("Fib$$Lambda.0x00007ffa600c4da0", "Fib$$Lambda_"),
            ("org/example/OrderService$$Lambda$669.0x0000000800fd7318", "org/example/OrderService$$Lambda_"),
            ("App$$Lambda$14/0x0000000800c03000", "App$$Lambda_"),
            ("App$$Lambda$14/1234", "App$$Lambda_"),
            ("App$$Lambda/1234", "App$$Lambda_"),
            ("App$$Lambda42", "App$$Lambda_"),
            ("libzstd-jni-1.5.1-16931311898282279136.so", "libzstd-jni-_.so"),
            ("./tmp/libzstd-jni-1.5.1-16931311898282279136.so (deleted)", "libzstd-jni-_.so"),
            ("./tmp/libamazonCorrettoCryptoProvider109b39cf33c563eb.so", "libamazonCorrettoCryptoProvider_.so"),
            (
                "./tmp/amazonCorrettoCryptoProviderNativeLibraries.7382c2f79097f415/libcrypto.so (deleted)",
                "libamazonCorrettoCryptoProvider_.so",
            ),
            ("libasyncProfiler-linux-x64-17b9a1d8156277a98ccc871afa9a8f69215f92.so", "libasyncProfiler-_.so"),
            ("/tmp/libasyncProfiler-macos-17b9a1d8156277a98ccc871afa9a8f69215f92.so", "libasyncProfiler-_.so"),
            ("com/x/Service$$EnhancerBySpringCGLIB$$3fe39412", "com/x/Service$$EnhancerBySpringCGLIB$$_"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
        }
    }

    #[test]
    fn leaves_ordinary_names() {
        for s in [
            "java/lang/Thread",
            "run",
            "$$Lambda$1/0x10",
            "App$$Lambda$x/0x10",
            "jdk/internal/reflect/GeneratedMethodAccessor",
            "libasyncProfiler-linux-x64-505cc169188276c919be50bc1b47e8f236295f.so",
            "libzstd-jni-1.5-123.so",
            "libc.so.6",
        ] {
            assert!(matches!(normalize(s), Cow::Borrowed(b) if b == s), "{s}");
        }
        let mut name = String::new();
        frame_name("", "no_Java_frame", &mut name);
        assert_eq!(name, ".no_Java_frame");
        frame_name("App$$Lambda.0x10", "run", &mut name);
        assert_eq!(name, "App$$Lambda_.run");
    }
}
