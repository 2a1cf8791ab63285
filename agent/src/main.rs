//! `cyrcles`: the agent's daemon and CLI.

fn main() -> std::process::ExitCode {
    eprintln!(
        "cyrcles {}: the agent is not built yet (only the protocol core is); see README.md",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
