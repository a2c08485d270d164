//! Every argument of the `hepml` command line, apart from the code that runs the commands
//! (`commands/`): what a user can type is read here in one place. Choices are `ValueEnum`s
//! mapped onto the library's own enums, so each name is spelt once and checked once.

use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::{Device, EngineKind};
use injector::inject::inputs::NonFinite;
use rootio::Compression;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hepml",
    version,
    about = "ML toolchain for high-energy physics: ROOT ntuples in, models and score branches out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// List trees and branches of ROOT files (type, compression, baskets, size, readability),
    /// or dump branch values as JSON.
    Inspect(InspectArgs),
    /// Score ROOT ntuples with ONNX models and write the scores as new branches (a decorated
    /// copy with the original baskets byte for byte, or a friend tree).
    Inject(Box<InjectArgs>),
    /// Convert ROOT ntuples to one HDF5 table (pandas `read_hdf`, h5py) from a YAML config:
    /// columns (branches or expressions), selection, weights, a label per sample.
    Convert(ConvertArgs),
    /// Train a DNN, a parameterised NN, a BDT or a random forest (k-fold ensembles, early
    /// stopping, OneCycle, LR finder, hyperparameter scans) from a YAML config on HDF5 tables;
    /// writes a run directory with metrics and plots.
    Train(TrainArgs),
    /// Export a trained run directory to ONNX (standardisation inside, hepml metadata).
    Export(ExportArgs),
    /// Explain a model: permutation importance (train against held-out), saliency,
    /// integrated gradients, conductance of hidden neurons, partial dependence, a surrogate
    /// tree; explain.json, PNG plots and a summary.
    Explain(Box<ExplainArgs>),
    /// Write a run directory (manifest, Slurm or HTCondor files) for `inject` or `convert` over
    /// many files, and submit it: `hepml submit --backend slurm --dir RUN -- inject ...`.
    Submit(SubmitArgs),
    /// Count a run directory's tasks: done, failed, running, missing.
    Status(RunDirArgs),
    /// Resubmit the failed and missing tasks of a run directory.
    Resume(ResumeArgs),
    /// Merge a run directory's sidecars into a summary (report.json): events, time per event,
    /// failures with their last log lines.
    Report(RunDirArgs),
    /// Run the main job end to end on generated data: write an ntuple, fit a classifier,
    /// export it as ONNX, score the ntuple with `inject`, report the AUC.
    Demo(DemoArgs),
    /// Read every entry of some branches and report the time (benchmark helper).
    #[command(hide = true)]
    ReadBench(ReadBenchArgs),
}

#[derive(Args)]
pub struct InspectArgs {
    /// ROOT files.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Only this tree (path inside the file).
    #[arg(long)]
    pub tree: Option<String>,
    /// Print the values of these branches (needs --tree when the file has several trees).
    #[arg(long, num_args = 1..)]
    pub dump: Vec<String>,
    /// Entry range START:STOP for --dump (either side may be empty).
    #[arg(long)]
    pub entries: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ReadBenchArgs {
    pub file: String,
    #[arg(long)]
    pub tree: Option<String>,
    #[arg(long, num_args = 1..)]
    pub branches: Vec<String>,
    /// Entries per chunk.
    #[arg(long, default_value_t = 100_000)]
    pub chunk: u64,
    /// Decoding threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct InjectArgs {
    /// Input ROOT files (globs allowed).
    #[arg(required_unless_present = "manifest")]
    pub inputs: Vec<String>,
    /// ONNX model (repeat for several models; with --fold-branch, the fold members in order).
    #[arg(long = "model", required = true)]
    pub models: Vec<PathBuf>,
    /// Feature spec (YAML, or a CMS preprocess.json) per model, or one for all; without it the
    /// model's own metadata (written by `hepml export`) says which branches feed it.
    #[arg(long = "features")]
    pub features: Vec<PathBuf>,
    /// Tree to read (default: the file's only tree).
    #[arg(long)]
    pub tree: Option<String>,
    /// Output file (one input) or folder (several inputs).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Write a friend tree holding only the new branches instead of a decorated copy.
    #[arg(long)]
    pub friend: bool,
    /// Inference engine: auto (tree ensembles and dense networks to hepml's native evaluators,
    /// every other graph to ONNX Runtime when its library is found, else tract), or one forced.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    pub engine: EngineArg,
    /// Device for the engine (cuda: ONNX Runtime's CUDA execution provider, never a silent
    /// CPU fallback).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// libonnxruntime.so for --engine ort and auto (default: ORT_DYLIB_PATH, else the project
    /// venv's pip onnxruntime); `none`: auto never uses ONNX Runtime.
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// The models are the members of a k-fold ensemble routed by this branch: member i scores
    /// events whose value % k == i.
    #[arg(long)]
    pub fold_branch: Option<String>,
    /// A parameterised model's parameter (a PNN's mass) set to constants: NAME=V1,V2,...
    /// (repeatable). Each value writes its own branches, suffixed `_NAME<V>` (score_mass500).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Object length for a preprocess.json spec without max_length.
    #[arg(long)]
    pub length: Option<usize>,
    /// NaN/inf in inputs: an error, or passed to the model. Default: passed to models that
    /// say they take missing values (hepml's tree ensembles, `hepml.nan`), else an error.
    #[arg(long, value_enum)]
    pub nan: Option<NanArg>,
    /// Threads for each stage: decoding, and inference on every engine (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print each stage's events/s (reading, input building, inference, writing).
    #[arg(long)]
    pub timing: bool,
    /// Events per chunk.
    #[arg(long, default_value_t = 10_000)]
    pub chunk: u64,
    /// Compression of new baskets: none, zlib, lzma, lz4, zstd, optionally -LEVEL, or a ROOT
    /// setting such as 505 (default: ROOT's 101, zlib level 1).
    #[arg(long, default_value = "zlib-1", value_parser = compression)]
    pub compression: Compression,
    /// Progress bar off.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// `--engine`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EngineArg {
    Auto,
    Tract,
    Native,
    Trees,
    Ort,
}

impl From<EngineArg> for EngineKind {
    fn from(e: EngineArg) -> EngineKind {
        match e {
            EngineArg::Auto => EngineKind::Auto,
            EngineArg::Tract => EngineKind::Tract,
            EngineArg::Native => EngineKind::Native,
            EngineArg::Trees => EngineKind::Trees,
            EngineArg::Ort => EngineKind::Ort,
        }
    }
}

#[derive(Args)]
pub struct ExplainArgs {
    /// A training run directory (explains its exported model on the run's own splits).
    pub run: Option<PathBuf>,
    /// ONNX models to explain, each into its own folder under OUTPUT when there are several.
    #[arg(long = "model")]
    pub models: Vec<PathBuf>,
    /// ROOT ntuples (read as `inject` reads them: the models' metadata or --features).
    #[arg(long = "data")]
    pub data: Vec<String>,
    /// Held-out ROOT ntuples: the --data events then form the `train` sample and these the
    /// `valid` one, compared side by side (overfitting is flagged).
    #[arg(long = "valid")]
    pub valid: Vec<String>,
    /// Feature spec per model, or one for all (YAML, or a CMS preprocess.json).
    #[arg(long = "features")]
    pub features: Vec<PathBuf>,
    /// Tree to read (default: the file's only tree).
    #[arg(long)]
    pub tree: Option<String>,
    /// Per-event label expression for ntuples (1 signal, 0 background; other values: regression).
    #[arg(long)]
    pub label: Option<String>,
    /// Per-event weight expression for ntuples (default 1).
    #[arg(long)]
    pub weight: Option<String>,
    /// A parameterised model's parameter set to a constant, NAME=VALUE.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Object length for a preprocess.json spec without max_length.
    #[arg(long)]
    pub length: Option<usize>,
    /// Output folder (explain.json, PNG plots, per-event attributions).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Methods, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [MethodArg::Perm, MethodArg::Saliency, MethodArg::Ig, MethodArg::Conductance, MethodArg::Pdp, MethodArg::Surrogate])]
    pub methods: Vec<MethodArg>,
    /// Samples of a run directory to use, comma-separated (train, valid, test).
    #[arg(long, value_delimiter = ',', default_value = "train,valid")]
    pub split: Vec<String>,
    /// Score output NAME[:COLUMN] (default: the only output; a two-class probability's column 1).
    #[arg(long)]
    pub output_name: Option<String>,
    /// Permutations per feature group.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Seed of permutations, expected-gradient draws and run splits.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Integrated-gradient steps (expected gradients: draws per event).
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Integrated-gradient baseline.
    #[arg(long, value_enum, default_value_t = BaselineArg::Mean)]
    pub baseline: BaselineArg,
    /// Require exact gradients (backpropagation): an error for models without them.
    #[arg(long)]
    pub exact: bool,
    /// Events read from ntuples (permutation importance uses them all).
    #[arg(long, default_value_t = 200_000)]
    pub max_events: u64,
    /// Events for gradients and partial dependence.
    #[arg(long, default_value_t = 5000)]
    pub events: usize,
    /// Features permuted together, NAME=FEATURE,FEATURE,...
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// How per-object inputs are grouped for permutation: each variable over all objects, or
    /// each object with all its variables.
    #[arg(long, value_enum, default_value_t = GroupBy::Variable)]
    pub group_by: GroupBy,
    /// Features for partial dependence (default: the parameter and the three most important).
    #[arg(long, value_delimiter = ',')]
    pub pdp: Vec<String>,
    /// A pair for 2-D partial dependence, A:B.
    #[arg(long = "pdp-pair")]
    pub pdp_pairs: Vec<String>,
    /// Depth of the surrogate tree.
    #[arg(long, default_value_t = 6)]
    pub surrogate_depth: usize,
    /// NaN/inf in ntuple inputs (default: as for inject).
    #[arg(long, value_enum)]
    pub nan: Option<NanArg>,
    /// Engine running the models.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    pub engine: EngineArg,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `hepml explain --group-by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// `var` permutes variable `var` of every object together.
    Variable,
    /// `INPUT[i]` permutes every variable of object i together.
    Object,
}

/// `hepml explain --methods`.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum MethodArg {
    Perm,
    Saliency,
    Ig,
    Conductance,
    Pdp,
    Surrogate,
}

impl From<MethodArg> for models::explain::Method {
    fn from(m: MethodArg) -> Self {
        use models::explain::Method;
        match m {
            MethodArg::Perm => Method::Perm,
            MethodArg::Saliency => Method::Saliency,
            MethodArg::Ig => Method::Ig,
            MethodArg::Conductance => Method::Conductance,
            MethodArg::Pdp => Method::Pdp,
            MethodArg::Surrogate => Method::Surrogate,
        }
    }
}

/// `hepml explain --baseline`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BaselineArg {
    /// All features zero.
    Zeros,
    /// The training sample's mean.
    Mean,
    /// Expected gradients over background (label 0) events.
    Background,
}

impl From<BaselineArg> for models::explain::BaselineKind {
    fn from(b: BaselineArg) -> Self {
        use models::explain::BaselineKind;
        match b {
            BaselineArg::Zeros => BaselineKind::Zeros,
            BaselineArg::Mean => BaselineKind::Mean,
            BaselineArg::Background => BaselineKind::Background,
        }
    }
}

/// `--device`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

impl From<DeviceArg> for Device {
    fn from(d: DeviceArg) -> Device {
        match d {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda,
        }
    }
}

/// `hepml train --device`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TrainDevice {
    /// burn's flex backend on the CPU.
    Cpu,
    /// burn's wgpu backend (a build with `--features gpu`).
    Wgpu,
}

impl From<TrainDevice> for models::train::DeviceKind {
    fn from(d: TrainDevice) -> Self {
        match d {
            TrainDevice::Cpu => Self::Cpu,
            TrainDevice::Wgpu => Self::Wgpu,
        }
    }
}

/// `--nan`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NanArg {
    /// A NaN or inf input stops the run, naming the event and branch.
    Error,
    /// NaN and inf go to the model as they are.
    Pass,
}

impl From<NanArg> for NonFinite {
    fn from(n: NanArg) -> NonFinite {
        match n {
            NanArg::Error => NonFinite::Error,
            NanArg::Pass => NonFinite::PassThrough,
        }
    }
}

/// `--compression`: the library's one parser of compression names (not a `ValueEnum`: a name
/// takes an optional level, `zstd-5`, or is a ROOT setting number, `404`).
fn compression(s: &str) -> Result<Compression, String> {
    Compression::parse(s).map_err(|e| e.to_string())
}

#[derive(Args)]
pub struct ConvertArgs {
    /// YAML config: tree, columns (branches or expressions), selection, weight, event_number,
    /// samples (name, files/globs, label, extra constant columns such as a PNN mass).
    pub config: PathBuf,
    /// Output HDF5 file (pandas `read_hdf(OUT, "events")`, h5py); with --manifest, the folder
    /// of the tasks' part-N.h5 files.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub shard: ShardArgs,
}

#[derive(Args)]
pub struct TrainArgs {
    /// YAML config: model, data, preparation, features, training, evaluation blocks.
    pub config: PathBuf,
    /// Run directory to create (written under a temporary name, renamed when complete).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Seed of initialisation, shuffling, splits and PNN parameter sampling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// cpu (burn flex) or wgpu (needs a build with `--features gpu`).
    #[arg(long, value_enum, default_value_t = TrainDevice::Cpu)]
    pub device: TrainDevice,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    #[arg(short, long)]
    pub quiet: bool,
    /// Scan a config key: KEY=V1,V2,... (a grid, repeat for a product) or, with --search,
    /// KEY=LO..HI or KEY=log:LO..HI ranges. The output becomes a scan directory: one run per
    /// point, summary.{json,tsv,png}, the best point by valid AUC; rerun to resume.
    #[arg(long, value_name = "KEY=VALUES")]
    pub scan: Vec<String>,
    /// Sample N points within the --scan domains (random, then TPE-guided) instead of a grid.
    #[arg(long, value_name = "N")]
    pub search: Option<usize>,
    /// Scan points trained at the same time (each a `hepml train` process).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Threads a tree ensemble (bdt, random_forest) trains on, per run (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Run directory written by `hepml train`.
    pub run: PathBuf,
    /// ONNX file (k-fold runs: NAME.fold<i>.onnx beside it, one per fold).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Branch `hepml inject` writes the score to.
    #[arg(long, default_value = "score")]
    pub branch: String,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the demo's files.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Events to generate (half signal, half background).
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Sharding of `inject` and `convert` into the tasks of a manifest.
#[derive(Args, Default)]
pub struct ShardArgs {
    /// Manifest of tasks (TSV: task, output, inputs). Without --task: group the inputs into
    /// tasks, write it and exit; with --task: run that task.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The task of --manifest to run (default: $SLURM_ARRAY_TASK_ID when set).
    #[arg(long, requires = "manifest")]
    pub task: Option<usize>,
    /// Input files per task (default 1).
    #[arg(long, conflicts_with = "events_per_job")]
    pub files_per_job: Option<usize>,
    /// Files are added to a task until it holds this many entries (read from tree headers).
    #[arg(long)]
    pub events_per_job: Option<u64>,
}

/// `hepml submit --backend`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    Slurm,
    Condor,
}

impl From<BackendArg> for batch::run::Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Slurm => Self::Slurm,
            BackendArg::Condor => Self::Condor,
        }
    }
}

#[derive(Args)]
pub struct SubmitArgs {
    /// Run directory, on a file system the workers share (manifest, scheduler files, logs).
    #[arg(long)]
    pub dir: PathBuf,
    /// slurm (sbatch job arrays) or condor (a DAG of HTCondor jobs).
    #[arg(long, value_enum)]
    pub backend: BackendArg,
    /// Write the files, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many tasks at once.
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Per task: cpus=N,mem=4G,time=HH:MM:SS (and for Slurm partition=P,account=A).
    #[arg(long)]
    pub resources: Vec<String>,
    /// A hepml binary on a shared path for the jobs (default: this one, copied to DIR/bin).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// After `--`: the `inject ...` or `convert ...` command to shard (with --files-per-job or
    /// --events-per-job).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct RunDirArgs {
    /// Run directory written by `hepml submit`.
    pub dir: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ResumeArgs {
    /// Run directory written by `hepml submit`.
    pub dir: PathBuf,
    /// Say which tasks would be resubmitted, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}
