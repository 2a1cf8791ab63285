//! The bridge, `cyrcles-bridge`, as the journeys run it.

fn main() -> std::process::ExitCode {
    cyrcles_bridge::cli::main()
}
