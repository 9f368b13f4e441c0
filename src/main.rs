//! The `naseval` command line. All printing happens here and in `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
