//! Structured fuzzing of basket decoding: real baskets from the shared reference files, with
//! one field at a time set to a hostile value (the key's fNbytes/fObjlen/fKeylen, the TBasket's
//! fNevBufSize/fNevBuf/fLast, the entry-offset count and values: out of range, backwards,
//! swapped, huge) or cut short at a field boundary. Every decode must return Ok or Err; a panic
//! is reported with the file, branch and mutation that caused it.

use super::{append_entries, has_entry_offsets, Array, RawBasket};
use crate::compress::decompress_into;
use crate::file::{KeyHeader, RootFile};
use crate::rbuf::RBuf;
use crate::tree::{BasketSource, Interp};
use crate::Result;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// One real basket, as stored (embedded or on disk) or rewritten uncompressed.
struct Sample {
    label: String,
    raw: Vec<u8>,
    embedded: bool,
    var: bool,
    interp: Interp,
}

fn shared_root_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/root");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reference data missing: {} ({e})", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "root"))
        .collect();
    v.sort();
    assert!(v.len() >= 20, "expected the 20+ shared ROOT files, found {}", v.len());
    v
}

fn get_i32(raw: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(raw[at..at + 4].try_into().expect("4 bytes"))
}
fn set_i32(raw: &mut [u8], at: usize, v: i32) {
    raw[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn set_i16(raw: &mut [u8], at: usize, v: i16) {
    raw[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The same on-disk basket with its payload stored uncompressed (as ROOT does when
/// compression does not pay), so that the entry offsets after the data can be mutated.
fn uncompressed(raw: &[u8]) -> Result<Vec<u8>> {
    let kh = KeyHeader::read(&mut RBuf::new(raw, 0))?;
    let keylen = kh.keylen as usize;
    let mut payload = Vec::new();
    decompress_into(&raw[keylen..], kh.objlen as usize, &mut payload)?;
    let mut out = raw[..keylen].to_vec();
    out.extend_from_slice(&payload);
    let n = out.len() as i32;
    set_i32(&mut out, 0, n);
    set_i32(&mut out, 6, payload.len() as i32);
    Ok(out)
}

/// A few real baskets per file: variable-size branches first (they carry entry offsets),
/// every embedded basket, and some fixed-size ones.
fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for path in shared_root_files() {
        let f = RootFile::open(&path).expect("reference file opens");
        let fname = path.file_name().expect("file name").to_string_lossy().into_owned();
        for tpath in f.tree_paths().expect("tree paths") {
            let t = f.tree(&tpath).expect("tree reads");
            // How many baskets taken so far, by (embedded, variable-size).
            let mut taken = [[0usize; 2]; 2];
            for b in &t.branches {
                let Ok(interp) = b.interp.clone() else { continue };
                let var = has_entry_offsets(b);
                let Some(loc) = b.baskets.first() else { continue };
                let embedded = matches!(loc.source, BasketSource::Embedded(_));
                let n = &mut taken[embedded as usize][var as usize];
                if *n >= if var { 12 } else { 4 } {
                    continue;
                }
                *n += 1;
                let label = format!("{fname}:{tpath}/{}", b.name);
                let mut push = |how: &str, raw: Vec<u8>| {
                    out.push(Sample {
                        label: format!("{label} ({how})"),
                        raw,
                        embedded,
                        var,
                        interp: interp.clone(),
                    })
                };
                match loc.source {
                    BasketSource::Embedded(slot) => {
                        let raw = t.embedded_basket(b, slot).expect("embedded basket");
                        push("embedded", raw.to_vec());
                    }
                    BasketSource::Disk { seek, nbytes } => {
                        f.read_at(seek, nbytes as usize, &mut scratch).expect("basket bytes");
                        push("uncompressed", uncompressed(&scratch).expect("basket decompresses"));
                        push("disk", scratch.clone());
                    }
                }
            }
        }
    }
    out
}

/// Decodes every entry of a (possibly mutated) basket, trusting its own entry count the way
/// the reader trusts the branch's.
fn decode(s: &Sample, raw: &[u8]) -> Result<Array> {
    let basket = if s.embedded {
        RawBasket::parse_embedded(raw, s.var)?
    } else {
        let nbytes = raw.get(..4).map_or(0, |_| get_i32(raw, 0) as u32);
        RawBasket::parse_disk(raw, nbytes, s.var)?
    };
    let mut out = Array::new(s.interp.clone(), 0);
    append_entries(&basket, &s.interp, 0, basket.nev as usize, &mut out)?;
    Ok(out)
}

/// Hostile values for a 4-byte field holding `o` in a buffer of `len` bytes.
fn i32_values(o: i32, len: usize) -> Vec<i32> {
    let l = len as i32;
    vec![
        0,
        1,
        -1,
        i32::MIN,
        i32::MAX,
        o.wrapping_sub(1),
        o.wrapping_add(1),
        o.wrapping_mul(2),
        o / 2,
        l - 1,
        l,
        l + 1,
        18,
        19,
    ]
}

/// Every mutation of one sample: (description, mutated bytes).
fn mutations(s: &Sample) -> Vec<(String, Vec<u8>)> {
    let raw = &s.raw;
    let mut out = Vec::new();
    let kh = KeyHeader::read(&mut RBuf::new(raw, 0)).expect("real basket key");
    let kl = kh.keylen as usize;
    let set32 = |name: &str, at: usize, out: &mut Vec<(String, Vec<u8>)>| {
        for v in i32_values(get_i32(raw, at), raw.len()) {
            let mut m = raw.clone();
            set_i32(&mut m, at, v);
            out.push((format!("{name} = {v}"), m));
        }
    };
    set32("fNbytes", 0, &mut out);
    set32("fObjlen", 6, &mut out);
    set32("fBufferSize", kl - 17, &mut out);
    set32("fNevBufSize", kl - 13, &mut out);
    set32("fNevBuf", kl - 9, &mut out);
    set32("fLast", kl - 5, &mut out);
    let l16 = raw.len().min(i16::MAX as usize) as i16;
    for v in [0, 1, -1, 18, 19, 20, kl as i16 - 1, kl as i16 + 1, l16, i16::MAX, i16::MIN] {
        let mut m = raw.clone();
        set_i16(&mut m, 14, v);
        out.push((format!("fKeylen = {v}"), m));
    }
    for v in [0u8, 1, 2, 255] {
        let mut m = raw.clone();
        m[kl - 1] = v;
        out.push((format!("flag byte = {v}"), m));
    }
    let nev = get_i32(raw, kl - 9).max(0) as usize;
    let last = get_i32(raw, kl - 5);
    // Where the entry-offset array starts (its count, then one i32 per entry), if any.
    let offsets_at = if !s.var {
        None
    } else if s.embedded {
        Some(kl)
    } else if get_i32(raw, 6) as usize + kl == raw.len() && (last as usize) + 4 <= raw.len() {
        Some(last as usize)
    } else {
        None // compressed: the offsets are inside the payload
    };
    let mut cuts = vec![0, 4, 13, kl - 1, kl, kl + 4, raw.len() / 2, raw.len() - 1];
    if let Some(c) = offsets_at.filter(|&c| c + 4 + 4 * nev <= raw.len() && get_i32(raw, c) as usize == nev) {
        let at = |k: usize| c + 4 + 4 * k;
        let off = |k: usize| get_i32(raw, at(k));
        cuts.extend([c + 2, at(nev / 2) + 1]);
        for v in [0, nev as i32 - 1, nev as i32 + 1, -1, i32::MAX, i32::MIN] {
            let mut m = raw.clone();
            set_i32(&mut m, c, v);
            out.push((format!("offset count = {v}"), m));
        }
        let mut ks = vec![0, 1, nev / 2, nev.saturating_sub(1)];
        ks.retain(|&k| k < nev);
        ks.dedup();
        for &k in &ks {
            let mut vals = vec![0, -1, kl as i32 - 1, last + 1, i32::MAX, i32::MIN];
            if k > 0 {
                vals.push(off(k - 1) - 1); // backwards
            }
            if k + 1 < nev {
                vals.push(off(k + 1) + 1); // past the next one
            }
            for v in vals {
                let mut m = raw.clone();
                set_i32(&mut m, at(k), v);
                out.push((format!("offset[{k}] = {v}"), m));
            }
        }
        for k in [0, nev / 2] {
            if k + 1 < nev {
                let mut m = raw.clone();
                let (a, b) = (off(k), off(k + 1));
                set_i32(&mut m, at(k), b);
                set_i32(&mut m, at(k + 1), a);
                out.push((format!("offsets {k} and {} swapped", k + 1), m));
            }
        }
        let mut m = raw.clone();
        for k in 0..nev {
            set_i32(&mut m, at(k), off(nev - 1 - k));
        }
        out.push(("offsets reversed".into(), m));
        for (name, v) in [("all offsets = fLast", last), ("all offsets huge", i32::MAX)] {
            let mut m = raw.clone();
            for k in 0..nev {
                set_i32(&mut m, at(k), v);
            }
            out.push((name.into(), m));
        }
    }
    for c in cuts {
        if c < raw.len() {
            out.push((format!("cut at byte {c}"), raw[..c].to_vec()));
        }
    }
    out
}

#[test]
fn mutated_basket_fields_give_errors_not_panics() {
    let samples = samples();
    let embedded = samples.iter().filter(|s| s.embedded).count();
    let var = samples.iter().filter(|s| s.var).count();
    assert!(embedded >= 1 && var >= 20, "{embedded} embedded, {var} variable-size samples");
    let (mut runs, mut errors, mut panics) = (0, 0, Vec::new());
    for s in &samples {
        // The untouched basket decodes: the harness itself is right.
        if let Err(e) = decode(s, &s.raw) {
            panic!("{}: the real basket does not decode: {e}", s.label);
        }
        for (what, raw) in mutations(s) {
            runs += 1;
            match catch_unwind(AssertUnwindSafe(|| decode(s, &raw))) {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => errors += 1,
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panics.push(format!("{} with {what}: {msg}", s.label));
                }
            }
        }
    }
    assert!(
        panics.is_empty(),
        "{} of {runs} mutated baskets panicked, e.g.:\n{}",
        panics.len(),
        panics[..panics.len().min(20)].join("\n")
    );
    // The mutations reach the checks: most of them must be refused.
    assert!(errors * 2 > runs, "only {errors} of {runs} mutations were refused");
    eprintln!("{runs} mutated baskets from {} samples: {errors} refused, none panicked", samples.len());
}
