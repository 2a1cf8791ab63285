//! `cyrcles`: the agent's daemon and CLI. Everything is in the library.

fn main() -> std::process::ExitCode {
    cyrcles_agent::cli::main()
}
