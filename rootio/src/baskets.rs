//! Where a TBranch's baskets are, from its own bookkeeping, following ROOT: basket `i` below
//! `fWriteBasket` is on disk at `fBasketSeek[i]`, or, when that seek is 0 (a recovered tree,
//! whose baskets the TTree object kept), embedded in the TBranch's `fBaskets` slot `i`; then the
//! basket being filled when the file was closed (NanoAOD, never-flushed trees) is embedded at
//! `fWriteBasket` and holds the entries up to `fEntries`.

use super::error::{Context, Result, RootError};
use super::file::KeyHeader;
use super::object::{Body, Object, Ptr, Value};
use super::rbuf::RBuf;
use super::tree::{BasketLoc, BasketSource};

fn basic_array_i64(v: Option<&Value>) -> Vec<i64> {
    match v {
        Some(Value::BasicPtr(Some(items))) | Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_i64).collect()
        }
        _ => Vec::new(),
    }
}

/// The on-disk baskets a TBranch object records: `(slot, seek, nbytes)` for every slot below
/// `fWriteBasket` with a seek and a size. What a decorated copy copies, whether or not the
/// branch's values can be decoded.
pub(crate) fn disk_slots(b: &Object) -> Result<Vec<(usize, u64, u32)>> {
    let write_basket = b.int("fWriteBasket")?;
    let write_basket = usize::try_from(write_basket)
        .map_err(|_| RootError::malformed(format!("fWriteBasket = {write_basket}")))?;
    let bytes = basic_array_i64(b.get("fBasketBytes"));
    let seek = basic_array_i64(b.get("fBasketSeek"));
    if write_basket > bytes.len() || write_basket > seek.len() {
        return Err(RootError::malformed(format!(
            "fWriteBasket {write_basket} but {} basket sizes, {} seeks",
            bytes.len(),
            seek.len()
        )));
    }
    Ok((0..write_basket)
        .filter(|&i| seek[i] > 0 && bytes[i] > 0 && bytes[i] <= i32::MAX as i64)
        .map(|i| (i, seek[i] as u64, bytes[i] as u32))
        .collect())
}

/// fNevBuf of an embedded TBasket (its key header, then version, buffer size, fNevBufSize,
/// fNevBuf).
pub(crate) fn embedded_nevbuf(raw: &[u8]) -> Result<u64> {
    let mut b = RBuf::new(raw, 0);
    let kh = KeyHeader::read(&mut b).context(|| "embedded basket".to_string())?;
    b.set_pos(kh.keylen as usize - 19)?;
    let _version = b.i16()?;
    let _bufsize = b.i32()?;
    let _nevbufsize = b.i32()?;
    let nev = b.i32()?;
    u64::try_from(nev).map_err(|_| RootError::malformed(format!("embedded basket fNevBuf {nev}")))
}

/// The baskets of a branch of `entries` entries, in entry order. With `lenient` (a container,
/// whose own baskets are not its values), baskets that do not add up to `entries` are not an
/// error.
pub(crate) fn basket_locs(b: &Object, entries: u64, lenient: bool) -> Result<Vec<BasketLoc>> {
    let write_basket = b.int("fWriteBasket")?;
    let write_basket = usize::try_from(write_basket)
        .map_err(|_| RootError::malformed(format!("fWriteBasket = {write_basket}")))?;
    let bytes = basic_array_i64(b.get("fBasketBytes"));
    let entry = basic_array_i64(b.get("fBasketEntry"));
    let seek = basic_array_i64(b.get("fBasketSeek"));
    if write_basket > bytes.len() || write_basket > seek.len() || write_basket > entry.len() {
        return Err(RootError::malformed(format!(
            "fWriteBasket {write_basket} but {} basket sizes, {} seeks, {} entry starts",
            bytes.len(),
            seek.len(),
            entry.len()
        )));
    }
    let mut embedded: Vec<Option<u64>> = Vec::new();
    for p in b.array_items("fBaskets") {
        embedded.push(match p {
            Ptr::New { obj, .. } => match &obj.body {
                Body::Raw(raw) => Some(embedded_nevbuf(raw)?),
                _ => None,
            },
            _ => None,
        });
    }
    let mut baskets = Vec::new();
    let mut next = 0u64;
    for i in 0..write_basket {
        let first = entry[i];
        let on_disk = seek[i] > 0 && bytes[i] > 0;
        let end = match embedded.get(i).copied().flatten() {
            Some(nev) if !on_disk => first.saturating_add(nev as i64),
            _ if i + 1 < write_basket => entry[i + 1],
            // After the last written basket: where the one being filled starts, if recorded.
            _ => match entry.get(i + 1) {
                Some(&e) if e >= first && e <= entries as i64 && e > 0 => e,
                _ => entries as i64,
            },
        };
        if first < 0 || end < first || first as u64 != next {
            return Err(RootError::malformed(format!(
                "basket {i}: entries {first}..{end} (expected to start at entry {next})",
            )));
        }
        let source = if on_disk {
            BasketSource::Disk {
                seek: seek[i] as u64,
                nbytes: u32::try_from(bytes[i])
                    .map_err(|_| RootError::malformed(format!("basket {i}: {} bytes", bytes[i])))?,
            }
        } else if embedded.get(i).copied().flatten().is_some() {
            BasketSource::Embedded(i)
        } else {
            return Err(RootError::malformed(format!(
                "basket {i}: seek {}, {} bytes, and not kept in the branch",
                seek[i], bytes[i]
            )));
        };
        baskets.push(BasketLoc {
            first_entry: first as u64,
            entries: (end - first) as u64,
            source,
        });
        next = end as u64;
    }
    // The basket being filled when the file was closed, kept in the TBranch record.
    for (slot, nev) in embedded.iter().enumerate().skip(write_basket) {
        match nev {
            Some(nev) if *nev > 0 && next < entries => {
                baskets.push(BasketLoc {
                    first_entry: next,
                    entries: *nev,
                    source: BasketSource::Embedded(slot),
                });
                next += nev;
            }
            _ => {}
        }
    }
    if next != entries && !lenient {
        return Err(RootError::malformed(format!(
            "baskets hold {next} entries but the branch has {entries}"
        )));
    }
    Ok(baskets)
}
