//! Branch values as JSON, one element per entry (nested lists for arrays, strings for text),
//! floats printed as the shortest decimal that round-trips at the branch's own precision and
//! NaN/±inf as the strings "nan", "inf", "-inf". `hepml inspect --dump` prints this, and the
//! Python cross-checks compare it with uproot and ROOT.

use super::read::{Array, Data};
use super::tree::{Element, Shape};
use std::fmt::Write as _;

fn push_value(d: &Data, i: usize, out: &mut String) {
    fn float(v: f64, s: String, out: &mut String) {
        if v.is_nan() {
            out.push_str("\"nan\"");
        } else if v.is_infinite() {
            out.push_str(if v > 0.0 { "\"inf\"" } else { "\"-inf\"" });
        } else {
            out.push_str(&s);
        }
    }
    let _ = match d {
        Data::Bool(v) => write!(out, "{}", v[i]),
        Data::I8(v) => write!(out, "{}", v[i]),
        Data::U8(v) => write!(out, "{}", v[i]),
        Data::I16(v) => write!(out, "{}", v[i]),
        Data::U16(v) => write!(out, "{}", v[i]),
        Data::I32(v) => write!(out, "{}", v[i]),
        Data::U32(v) => write!(out, "{}", v[i]),
        Data::I64(v) => write!(out, "{}", v[i]),
        Data::U64(v) => write!(out, "{}", v[i]),
        Data::F32(v) => {
            float(v[i] as f64, format!("{:?}", v[i]), out);
            Ok(())
        }
        Data::F64(v) => {
            float(v[i], format!("{:?}", v[i]), out);
            Ok(())
        }
    };
}

/// Values `range` of `d` nested by `dims` (row-major).
fn push_block(d: &Data, start: usize, dims: &[usize], out: &mut String) {
    match dims.split_first() {
        None => push_value(d, start, out),
        Some((&n, rest)) => {
            let stride: usize = rest.iter().product();
            out.push('[');
            for j in 0..n {
                if j > 0 {
                    out.push(',');
                }
                push_block(d, start + j * stride, rest, out);
            }
            out.push(']');
        }
    }
}

/// Item `j` of the first of `levels` (offsets levels, outermost first): a list of the next
/// level's items, or at the last level a string, or a list of values or of ElementLink
/// records (`{"m_persKey": k, "m_persIndex": i}`, as uproot reads them).
fn push_list_item(d: &Data, levels: &[&[usize]], element: Element, j: usize, out: &mut String) {
    let Some((level, below)) = levels.split_first() else {
        return;
    };
    let r = level[j]..level[j + 1];
    if element == Element::Link && below.is_empty() {
        out.push('[');
        for (n, i) in r.step_by(2).enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str("{\"m_persKey\":");
            push_value(d, i, out);
            out.push_str(",\"m_persIndex\":");
            push_value(d, i + 1, out);
            out.push('}');
        }
        out.push(']');
        return;
    }
    if element == Element::String && below.is_empty() {
        let bytes = match d {
            Data::U8(v) => &v[r],
            _ => &[][..],
        };
        let _ = write!(
            out,
            "{}",
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
        );
        return;
    }
    out.push('[');
    for (n, i) in r.enumerate() {
        if n > 0 {
            out.push(',');
        }
        if below.is_empty() {
            push_value(d, i, out);
        } else {
            push_list_item(d, below, element, i, out);
        }
    }
    out.push(']');
}

/// Appends an array as JSON to `out`: a list of values per entry (a list of lists for jagged entries, a string for strings; NaN and infinities as strings), the form `hepml inspect --dump` prints.
pub fn write_array_json(arr: &Array, out: &mut String) {
    // Vectors, strings and nested lists: their offsets levels, outermost first.
    let levels: Vec<&[usize]> = arr
        .outer
        .iter()
        .chain(&arr.offsets)
        .map(Vec::as_slice)
        .collect();
    let element = match arr.interp.shape {
        Shape::String { .. } => Element::String,
        Shape::Nested { element, .. } => element,
        _ => Element::Number,
    };
    out.push('[');
    for e in 0..arr.entries as usize {
        if e > 0 {
            out.push(',');
        }
        match &arr.interp.shape {
            Shape::Scalar => push_value(&arr.data, e, out),
            Shape::Fixed(dims) => push_block(&arr.data, e * arr.interp.item_len(), dims, out),
            Shape::Var { inner, .. } => {
                let r = arr.entry_range(e);
                let row: usize = inner.iter().product();
                out.push('[');
                for (j, item) in (r.start..r.end).enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    if inner.is_empty() {
                        push_value(&arr.data, item, out);
                    } else {
                        push_block(&arr.data, item * row, inner, out);
                    }
                }
                out.push(']');
            }
            Shape::Vector | Shape::String { .. } | Shape::Nested { .. } => {
                push_list_item(&arr.data, &levels, element, e, out)
            }
        }
    }
    out.push(']');
}
