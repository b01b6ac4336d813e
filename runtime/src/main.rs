//! The `weir` binary; everything is in the library's `cli` module.

fn main() -> std::process::ExitCode {
    weir::cli::main()
}
