//! The `hepml` command line.

mod cli;
mod commands;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Cmd};
use commands::{batch, convert, demo, explain, inject, inspect, train};

fn main() {
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
