//! `hepml inspect`: what is in a ROOT file, and (with `--dump`) the values of branches as JSON,
//! in a form any other reader (uproot, ROOT) can be compared against.

use crate::cli::{InspectArgs, ReadBenchArgs};
use anyhow::{bail, Context, Result};
use injector::inject::tree_name;
use rootio::{BranchReader, Chain, Chunk, RootFile, Shape, Tree};
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write as _;

/// The tree `want` names, or the file's only tree (the same choice `hepml inject` makes).
fn pick_tree(f: &RootFile, want: Option<&str>) -> Result<Tree> {
    Ok(f.tree(&tree_name(f, want)?)?)
}

pub fn run(a: InspectArgs) -> Result<()> {
    if !a.dump.is_empty() {
        if a.files.len() != 1 {
            bail!("--dump takes exactly one file");
        }
        return dump(&a);
    }
    let mut files = Vec::new();
    let mut text = String::new();
    for path in &a.files {
        let f = RootFile::open(path)?;
        let names = match &a.tree {
            Some(t) => vec![t.clone()],
            None => f.tree_paths()?,
        };
        let mut trees = Vec::new();
        let _ = writeln!(
            text,
            "{path}  (ROOT {}, compression {})",
            f.version, f.compress
        );
        for s in &f.skipped {
            let _ = writeln!(text, "  skipped: {s}");
        }
        for name in names {
            // A tree whose header cannot be read is listed with the reason; the others still are.
            let t = match f.tree(&name) {
                Ok(t) => t,
                Err(e) if a.tree.is_none() => {
                    let _ = writeln!(text, "  tree {name}  UNREADABLE: {e}");
                    trees.push(json!({"name": name, "error": e.to_string(), "branches": []}));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let _ = writeln!(
                text,
                "  tree {name}  \"{}\"  {} entries, {} branches",
                t.title,
                t.entries,
                t.branches.len()
            );
            let mut branches = Vec::new();
            for b in &t.branches {
                let comp = match f.branch_compression(b) {
                    Ok(c) => c.to_string(),
                    Err(e) => format!("? ({e})"),
                };
                let (ty, counter, readable, mut reason) = match &b.interp {
                    Ok(i) => (
                        i.type_name(),
                        match &i.shape {
                            Shape::Var { counter, .. } => Some(counter.clone()),
                            _ => None,
                        },
                        true,
                        None,
                    ),
                    Err(_) if b.container => ("container".to_string(), None, false, None),
                    Err(why) => ("?".to_string(), None, false, Some(why.clone())),
                };
                // ROOT reads a tree's fEntries entries, whatever a branch holds beyond them.
                let note = (readable && b.entries != t.entries).then(|| {
                    if b.entries > t.entries {
                        format!(
                            "holds {} entries, the tree {}: hepml reads the tree's {}, as ROOT does",
                            b.entries, t.entries, t.entries
                        )
                    } else {
                        format!("holds {} of the tree's {} entries", b.entries, t.entries)
                    }
                });
                if b.container {
                    reason = b.interp.as_ref().err().cloned();
                }
                let _ = writeln!(
                    text,
                    "    {:<32} {:<18} {:<10} {:>4} baskets {:>10} B on disk {:>10} B{}",
                    b.name,
                    ty,
                    comp,
                    b.baskets.len(),
                    b.zip_bytes,
                    b.tot_bytes,
                    match (&reason, &note) {
                        (Some(r), _) if b.container => format!("  ({r})"),
                        (Some(r), _) => format!("  UNSUPPORTED: {r}"),
                        (None, Some(n)) => format!("  NOTE: {n}"),
                        (None, None) => String::new(),
                    }
                );
                branches.push(json!({
                    "name": b.name, "path": t.branch_path(b), "title": b.title, "type": ty,
                    "leaf": b.leaves.first().map(|l| l.class.clone()),
                    "counter": counter, "compression": comp, "baskets": b.baskets.len(),
                    "zip_bytes": b.zip_bytes, "tot_bytes": b.tot_bytes,
                    "readable": readable, "reason": reason, "container": b.container,
                    "entries": b.entries, "note": note,
                }));
            }
            trees.push(
                json!({"name": name, "title": t.title, "entries": t.entries, "branches": branches}),
            );
        }
        files.push(
            json!({"path": path, "version": f.version, "skipped": f.skipped, "trees": trees}),
        );
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &json!({ "files": files }))?;
        writeln!(out)?;
    } else {
        write!(out, "{text}")?;
    }
    Ok(())
}

fn parse_range(s: Option<&str>, n: u64) -> Result<(u64, u64)> {
    let Some(s) = s else { return Ok((0, n)) };
    let (a, b) = s
        .split_once(':')
        .with_context(|| format!("--entries '{s}': expected START:STOP"))?;
    let a: u64 = if a.is_empty() {
        0
    } else {
        a.parse()
            .with_context(|| format!("--entries start '{a}'"))?
    };
    let b: u64 = if b.is_empty() {
        n
    } else {
        b.parse().with_context(|| format!("--entries stop '{b}'"))?
    };
    if a > b || b > n {
        bail!("--entries {a}:{b} outside the tree's {n} entries");
    }
    Ok((a, b))
}

fn dump(a: &InspectArgs) -> Result<()> {
    let path = &a.files[0];
    let f = RootFile::open(path)?;
    let t = pick_tree(&f, a.tree.as_deref())?;
    let (start, stop) = parse_range(a.entries.as_deref(), t.entries)?;
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"tree\":{},\"start\":{start},\"stop\":{stop},\"branches\":{{",
        json!(t.name)
    );
    for (k, name) in a.dump.iter().enumerate() {
        let b = t.branch(name)?;
        let mut r = BranchReader::new(&f, &t, b)?;
        // A branch with fewer entries than its tree (never filled after some point) gives
        // the ones it holds.
        let arr = r
            .read(start.min(b.entries), stop.min(b.entries))
            .with_context(|| format!("{path}: reading branch '{name}'"))?;
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:", json!(name));
        rootio::write_array_json(&arr, &mut out);
    }
    out.push_str("}}\n");
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

pub fn read_bench(a: ReadBenchArgs) -> Result<()> {
    let f = RootFile::open(&a.file)?;
    let t = pick_tree(&f, a.tree.as_deref())?;
    let names: Vec<String> = if a.branches.is_empty() {
        t.branches
            .iter()
            .filter(|b| b.interp.is_ok())
            .map(|b| b.name.clone())
            .collect()
    } else {
        a.branches.clone()
    };
    drop(f);
    let t0 = std::time::Instant::now();
    let chain = Chain::open(&[&a.file], &t.name)?;
    let threads = a.threads.unwrap_or_else(engine::cores);
    let mut it = chain.chunks(&names, a.chunk)?.threads(threads);
    let mut c = Chunk::new();
    let mut checksum = 0f64;
    while it.next_into(&mut c)? {
        for arr in &c.arrays {
            let d = &arr.data;
            if !d.is_empty() {
                checksum += d.get_f64(0) + d.get_f64(d.len() - 1);
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"entries": t.entries, "branches": names.len(), "threads": threads, "seconds": secs, "checksum": checksum})
    );
    Ok(())
}
