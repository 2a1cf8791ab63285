//! `cyrcles-bridge`: the OpenID Connect provider for Login with Cyrcles.

fn main() -> std::process::ExitCode {
    cyrcles_bridge::cli::main()
}
