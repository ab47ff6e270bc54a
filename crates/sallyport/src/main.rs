//! `sallyport`: the command line, shaped like Kratos' (`serve`, `migrate sql`, `import identities`, …).

use clap::Parser;

fn main() -> std::process::ExitCode {
    sallyport::process::limit_malloc_arenas();
    sallyport::process::trim_malloc_periodically();
    let cli = sallyport::cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("could not start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(sallyport::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
