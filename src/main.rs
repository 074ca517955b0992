//! The `pubfn` command: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    pubfn::cli::main(pubfn::cli::Cli::parse())
}
