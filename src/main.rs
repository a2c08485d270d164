//! The `hepml` command line.

mod convert;
mod demo;
mod inject;
mod inspect;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hepml",
    version,
    about = "ML toolchain for high-energy physics: ROOT ntuples in, models and score branches out"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List trees and branches of ROOT files (type, compression, baskets, size, readability),
    /// or dump branch values as JSON.
    Inspect(inspect::InspectArgs),
    /// Score ROOT ntuples with ONNX models and write the scores as new branches (a decorated
    /// copy with the original baskets byte for byte, or a friend tree).
    Inject(Box<inject::InjectArgs>),
    /// Convert ROOT ntuples to one HDF5 table (pandas `read_hdf`, h5py) from a YAML config:
    /// columns (branches or expressions), selection, weights, a label per sample.
    Convert(convert::ConvertArgs),
    /// Train a DNN or parameterised NN (k-fold ensembles, early stopping, OneCycle, LR finder)
    /// from a YAML config on HDF5 tables; writes a run directory with metrics.
    Train(train::TrainArgs),
    /// Export a trained run directory to ONNX (standardisation inside, hepml metadata).
    Export(train::ExportArgs),
    /// Run the main job end to end on generated data: write an ntuple, fit a classifier,
    /// export it as ONNX, score the ntuple with `inject`, report the AUC.
    Demo(demo::DemoArgs),
    /// Read every entry of some branches and report the time (benchmark helper).
    #[command(hide = true)]
    ReadBench(inspect::ReadBenchArgs),
}

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
        Cmd::Demo(a) => demo::run(a, |argv| match Cli::parse_from(argv).cmd {
            Cmd::Inject(i) => inject::run(*i),
            _ => unreachable!("the demo only runs inject"),
        }),
        Cmd::ReadBench(a) => inspect::read_bench(a),
    };
    if let Err(e) = r {
        let msg = format!("{e:#}");
        eprintln!("hepml: error: {}", msg.replace('\n', " "));
        std::process::exit(1);
    }
}
