//! `pws-load`: see the library's documentation and README.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    match pws_loader::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pws-load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
