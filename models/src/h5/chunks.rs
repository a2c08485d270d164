//! Reading the chunks of datasets whose filters hdf5-pure does not decode: Blosc (PyTables'
//! and pandas' `complib='blosc'`, HDF5 filter 32001) and bzip2 (`complib='bzip2'`, 307). The
//! chunks are located through hdf5-pure's chunk index, read from the file, decoded here (with
//! the standard filters they are combined with: deflate, shuffle, Fletcher-32) and cut to the
//! rows asked for. Every other dataset goes through hdf5-pure's own reader.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use hdf5_pure::Dataset;

use super::{blosc, ctx, layout, H5Error};

const DEFLATE: u16 = 1;
const SHUFFLE: u16 = 2;
const FLETCHER32: u16 = 3;
const BZIP2: u16 = 307;
const BLOSC: u16 = 32001;

/// The largest decoded chunk read (a corrupt chunk shape must not claim gigabytes); HDF5
/// writers default to chunks of about 1 MB, PyTables' largest are a few MB.
const MAX_CHUNK: usize = 256 << 20;

/// Whether `ds` is compressed with a filter that hdf5-pure does not decode and this module
/// does (then hdf5-pure's reader is not tried: it would size and fill its output before
/// refusing).
pub(super) fn decoded_here(ds: &Dataset) -> bool {
    ds.filter_pipeline()
        .iter()
        .any(|f| matches!(f.id, BZIP2 | BLOSC))
}

/// The stored bytes of rows `r0..r0 + n` of `ds` (its first dimension), as hdf5-pure's
/// `read_raw_rows` gives them.
pub(super) fn read_rows(
    ds: &Dataset,
    path: &Path,
    r0: usize,
    n: usize,
    what: &str,
) -> Result<Vec<u8>, H5Error> {
    if decoded_here(ds) {
        own_rows(ds, path, r0, n).map_err(|e| layout(path, format!("{what}: {e}")))
    } else {
        ctx(ds.read_raw_rows(r0 as u64, n as u64), path, what)
    }
}

/// The whole dataset's stored bytes (see [`read_rows`]).
pub(super) fn read_all(ds: &Dataset, path: &Path, what: &str) -> Result<Vec<u8>, H5Error> {
    let rows = ctx(ds.shape(), path, what)?.first().copied().unwrap_or(1);
    read_rows(ds, path, 0, rows as usize, what)
}

/// Rows `r0..r0 + n`, chunk by chunk: every chunk that holds some of them is read, decoded and
/// its part copied into place. Rows no chunk holds (never written) are zero, HDF5's default
/// fill value.
fn own_rows(ds: &Dataset, path: &Path, r0: usize, n: usize) -> Result<Vec<u8>, String> {
    let e = |x: hdf5_pure::Error| x.to_string();
    let shape: Vec<usize> = ds.shape().map_err(e)?.iter().map(|&d| d as usize).collect();
    let chunk: Vec<usize> = ds
        .chunk_shape()
        .map_err(e)?
        .ok_or("a filtered dataset that is not chunked")?
        .iter()
        .map(|&d| d as usize)
        .collect();
    let elem = ds.element_size().map_err(e)? as usize;
    let (Some(&rows), true) = (shape.first(), chunk.len() == shape.len()) else {
        return Err(format!("shape {shape:?} and chunk {chunk:?} do not match"));
    };
    if r0 + n > rows || chunk.contains(&0) {
        return Err(format!("rows {r0}..{} of {rows}", r0 + n));
    }
    // Bytes of one row (every dimension but the first) and of one decoded chunk.
    let row_bytes = shape[1..].iter().product::<usize>() * elem;
    let chunk_bytes = chunk.iter().product::<usize>() * elem;
    if chunk_bytes > MAX_CHUNK {
        return Err(format!(
            "a chunk of {chunk_bytes} bytes (chunk shape {chunk:?})"
        ));
    }
    let filters = ds.filter_pipeline();
    let file = File::open(path).map_err(|x| x.to_string())?;
    let file_len = file.metadata().map_err(|x| x.to_string())?.len();
    let mut out = vec![0u8; n * row_bytes];
    for c in ds.chunks().map_err(e)? {
        let first = c.offset.first().copied().unwrap_or(0) as usize;
        if first >= r0 + n || first + chunk[0] <= r0 {
            continue;
        }
        if c.address.saturating_add(c.storage_size) > file_len {
            return Err(format!(
                "a chunk of {} bytes at byte {} of a {file_len}-byte file",
                c.storage_size, c.address
            ));
        }
        let mut stored = vec![0u8; c.storage_size as usize];
        file.read_exact_at(&mut stored, c.address)
            .map_err(|x| format!("chunk at byte {}: {x}", c.address))?;
        let data = decode(stored, &filters, c.filter_mask, elem, chunk_bytes)?;
        if data.len() != chunk_bytes {
            return Err(format!(
                "a chunk decodes to {} bytes, not {chunk_bytes}",
                data.len()
            ));
        }
        let at: Vec<usize> = c.offset.iter().map(|&o| o as usize).collect();
        place(&data, &at, &chunk, &shape, elem, r0, n, &mut out)?;
    }
    Ok(out)
}

/// Copies the part of a decoded chunk (origin `at`, dimensions `chunk`) that lies inside the
/// dataset (`shape`) and inside rows `r0..r0 + n` into `out` (those rows, row-major): one
/// contiguous run along the last dimension at a time.
#[allow(clippy::too_many_arguments)]
fn place(
    data: &[u8],
    at: &[usize],
    chunk: &[usize],
    shape: &[usize],
    elem: usize,
    r0: usize,
    n: usize,
    out: &mut [u8],
) -> Result<(), String> {
    let rank = shape.len();
    if at.len() != rank {
        return Err(format!("a chunk at {at:?} in a {rank}-D dataset"));
    }
    // How many of the chunk's elements along each dimension lie inside the dataset (and, for
    // the first, inside the rows asked for).
    let lo0 = r0.max(at[0]);
    let hi0 = (r0 + n).min(at[0] + chunk[0]).min(shape[0]);
    let extent: Vec<usize> = (1..rank)
        .map(|d| chunk[d].min(shape[d].saturating_sub(at[d])))
        .collect();
    let run = extent.last().copied().unwrap_or(1) * elem;
    if extent.contains(&0) {
        return Ok(());
    }
    // Row-major strides in elements, in the chunk and in the dataset.
    let stride = |dims: &[usize]| -> Vec<usize> {
        let mut s = vec![1; dims.len()];
        for d in (0..dims.len().saturating_sub(1)).rev() {
            s[d] = s[d + 1] * dims[d + 1];
        }
        s
    };
    let (cs, ds) = (stride(chunk), stride(shape));
    // Every index of the middle dimensions (1..rank-1) within `extent`, last fastest.
    let middle = &extent[..extent.len().saturating_sub(1)];
    for row in lo0..hi0 {
        let mut idx = vec![0usize; middle.len()];
        'runs: loop {
            let (mut src, mut dst) = ((row - at[0]) * cs[0], (row - r0) * ds[0]);
            for (k, &i) in idx.iter().enumerate() {
                src += i * cs[k + 1];
                dst += (at[k + 1] + i) * ds[k + 1];
            }
            if rank > 1 {
                dst += at[rank - 1];
            }
            let (src, dst) = (src * elem, dst * elem);
            let (Some(from), Some(to)) = (data.get(src..src + run), out.get_mut(dst..dst + run))
            else {
                return Err("a chunk outside its dataset".into());
            };
            to.copy_from_slice(from);
            let mut k = idx.len();
            loop {
                if k == 0 {
                    break 'runs;
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] < middle[k] {
                    continue 'runs;
                }
                idx[k] = 0;
            }
        }
    }
    Ok(())
}

/// A stored chunk through the filter pipeline, backwards; filter `i` is skipped where bit `i`
/// of `mask` is set (HDF5's per-chunk filter mask).
fn decode(
    stored: Vec<u8>,
    filters: &[hdf5_pure::Filter],
    mask: u32,
    elem: usize,
    chunk_bytes: usize,
) -> Result<Vec<u8>, String> {
    let mut data = stored;
    for (i, f) in filters.iter().enumerate().rev() {
        if i < 32 && mask & (1 << i) != 0 {
            continue;
        }
        data = match f.id {
            BLOSC => blosc::decompress(&data)?,
            BZIP2 => {
                let mut out = Vec::with_capacity(chunk_bytes);
                bzip2::read::BzDecoder::new(data.as_slice())
                    .take(chunk_bytes as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|x| format!("bzip2: {x}"))?;
                out
            }
            DEFLATE => {
                let mut out = vec![0u8; chunk_bytes];
                let got = libdeflater::Decompressor::new()
                    .zlib_decompress(&data, &mut out)
                    .map_err(|x| format!("deflate: {x:?}"))?;
                out.truncate(got);
                out
            }
            // HDF5's shuffle is Blosc's byte shuffle.
            SHUFFLE => {
                let mut out = vec![0u8; data.len()];
                blosc::unshuffle(elem.max(1), &data, &mut out);
                out
            }
            // The checksum is the last 4 bytes; the data was checked by the filters after it.
            FLETCHER32 => {
                let keep = data
                    .len()
                    .checked_sub(4)
                    .ok_or("Fletcher-32: short chunk")?;
                data.truncate(keep);
                data
            }
            id => return Err(format!("HDF5 filter {id} together with Blosc or bzip2")),
        };
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_cuts_edge_chunks_of_2d_datasets() {
        // A 5 x 3 dataset of 1-byte elements in 2 x 2 chunks; rows 1..4 asked for.
        let shape = [5, 3];
        let chunk = [2, 2];
        let value = |r: usize, c: usize| (r * 10 + c) as u8;
        let mut out = vec![0u8; 3 * 3];
        for a0 in (0..5).step_by(2) {
            for a1 in (0..3).step_by(2) {
                // Positions outside the dataset hold junk, as stored edge chunks may.
                let data: Vec<u8> = (0..4)
                    .map(|k| {
                        let (r, c) = (a0 + k / 2, a1 + k % 2);
                        if r < 5 && c < 3 {
                            value(r, c)
                        } else {
                            99
                        }
                    })
                    .collect();
                place(&data, &[a0, a1], &chunk, &shape, 1, 1, 3, &mut out).unwrap();
            }
        }
        let want: Vec<u8> = (1..4)
            .flat_map(|r| (0..3).map(move |c| value(r, c)))
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn place_copies_1d_and_3d_chunks() {
        // 1-D: 7 elements of 2 bytes in chunks of 3, rows 2..6.
        let mut out = vec![0u8; 4 * 2];
        for a in (0..7).step_by(3) {
            let data: Vec<u8> = (0..6).map(|k| (a * 2 + k) as u8).collect();
            place(&data, &[a], &[3], &[7], 2, 2, 4, &mut out).unwrap();
        }
        assert_eq!(out, (4..12).collect::<Vec<u8>>());
        // 3-D: 2 x 3 x 2 in chunks of 1 x 2 x 2, all rows.
        let shape = [2, 3, 2];
        let value = |i: usize, j: usize, k: usize| (i * 100 + j * 10 + k) as u8;
        let mut out = vec![0u8; 12];
        for i in 0..2 {
            for j0 in (0..3).step_by(2) {
                let data: Vec<u8> = (0..4)
                    .map(|q| {
                        let (j, k) = (j0 + q / 2, q % 2);
                        if j < 3 {
                            value(i, j, k)
                        } else {
                            77
                        }
                    })
                    .collect();
                place(&data, &[i, j0, 0], &[1, 2, 2], &shape, 1, 0, 2, &mut out).unwrap();
            }
        }
        let want: Vec<u8> = (0..2)
            .flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| value(i, j, k))))
            .collect();
        assert_eq!(out, want);
    }
}
