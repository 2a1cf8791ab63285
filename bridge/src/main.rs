//! `cyrcles-bridge`: the OpenID Connect provider.

fn main() -> std::process::ExitCode {
    eprintln!(
        "cyrcles-bridge {}: the bridge is not built yet (only the protocol core is); see README.md",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
