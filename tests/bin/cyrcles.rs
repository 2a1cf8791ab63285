//! The agent, `cyrcles`, as the journeys run it.

fn main() -> std::process::ExitCode {
    cyrcles_agent::cli::main()
}
