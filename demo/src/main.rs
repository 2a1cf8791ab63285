//! `cyrcles-demo`: the quickstart (a bridge and a demo website with Login
//! with Cyrcles), or the website alone against an existing bridge.

fn main() -> std::process::ExitCode {
    cyrcles_demo::cli::main()
}
