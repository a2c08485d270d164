//! The `hepml` command line.

mod cli;
mod commands;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Cmd};
use commands::{batch, convert, demo, explain, inject, inspect, train};

/// Keeps large buffers in the heap once freed. glibc serves allocations above 128 kB (a chunk's
/// arrays, input tensors, inference scratch) with fresh mmap'd pages and unmaps them on free,
/// so every chunk paid page faults and zeroing again: 700 MB of page faults for one 2M-event
/// inject. Memory stays bounded by the chunk size either way.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() {
    tune_allocator();
    let cli = Cli::parse();
    let r: Result<()> = match cli.cmd {
        Cmd::Inspect(a) => inspect::run(a),
        Cmd::Inject(a) => inject::run(*a),
        Cmd::Convert(a) => convert::run(a),
        Cmd::Train(a) => train::run(a),
        Cmd::Export(a) => train::export(a),
        Cmd::Explain(a) => explain::run(*a),
        Cmd::Submit(a) => batch::submit(a),
        Cmd::Status(a) => batch::status(a),
        Cmd::Resume(a) => batch::resume(a),
        Cmd::Report(a) => batch::report(a),
        Cmd::Demo(a) => demo::run(a),
        Cmd::ReadBench(a) => inspect::read_bench(a),
    };
    if let Err(e) = r {
        eprintln!("hepml: error: {}", commands::error_line(&e));
        std::process::exit(1);
    }
}
