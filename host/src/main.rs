use clap::Parser;

// The pipeline allocates and frees many small buffers per window (keys,
// accumulators, formatted objects); mimalloc's per-thread free lists keep
// that off the profile (glibc's malloc was a third of a 100,000-key run).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = weir::cli::Cli::parse();
    match weir::cli::main(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
