//! The `airlock` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    airlock::cli::main()
}
