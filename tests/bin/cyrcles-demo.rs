//! The demo website, `cyrcles-demo`, as the journeys run it.

fn main() -> std::process::ExitCode {
    cyrcles_demo::cli::main()
}
