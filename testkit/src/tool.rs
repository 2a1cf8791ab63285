//! Tests that need something outside the workspace (PostgreSQL, Chromium,
//! Node).
//!
//! On a developer's machine such a test says that it is skipped and
//! passes; under CI (the environment variable `CI` set) the tool must be
//! there, so a run that skipped a test is never green.

/// Whether CI runs these tests (`CI` is set).
pub fn on_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Whether the test can run: true if `present`; otherwise panics under CI
/// and, elsewhere, prints that the test is skipped for want of `what` and
/// returns false.
pub fn require_tool(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    assert!(!on_ci(), "{what} is needed under CI (.ci/run provides it)");
    eprintln!("skipped: {what} is needed");
    false
}

/// The value of the environment variable `name`, which names a tool (a
/// database to create test databases in); `None`, the test skipped, when
/// unset, except under CI, where it panics.
pub fn require_env(name: &str) -> Option<String> {
    let value = std::env::var(name).ok();
    require_tool(&format!("the variable {name}"), value.is_some());
    value
}
