//! The protocol-0 pickles PyTables keeps in string attributes (pandas' `table` layout stores
//! its column lists this way): written for `format: table`, read back to name columns.

/// One string as the `V` (unicode) opcode's raw-unicode-escape text: a backslash, a line break
/// and anything beyond ASCII become `\uXXXX` / `\UXXXXXXXX` escapes, so the attribute stays
/// ASCII and the line-based opcode cannot be cut short.
fn unicode(s: &str, out: &mut String) {
    out.push('V');
    for c in s.chars() {
        match c {
            '\\' | '\n' | '\r' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('\n');
}

/// Appends the opcodes that build a list of `items` (on the stack, not yet stopped).
fn list(items: &[&str], out: &mut String) {
    out.push_str("(l");
    for s in items {
        unicode(s, out);
        out.push('a');
    }
}

/// `['a', 'b']`
pub fn str_list(items: &[&str]) -> String {
    let mut out = String::new();
    list(items, &mut out);
    out.push('.');
    out
}

/// `[(axis, ['a', 'b'])]`: pandas' `non_index_axes`.
pub fn axis_list(axis: i64, items: &[&str]) -> String {
    let mut out = format!("(l(I{axis}\n");
    list(items, &mut out);
    out.push_str("ta.");
    out
}

/// `[(axis, 'name')]`: pandas' `index_cols`.
pub fn index_cols(axis: i64, name: &str) -> String {
    let mut out = format!("(l(I{axis}\n");
    unicode(name, &mut out);
    out.push_str("ta.");
    out
}

/// pandas' `info` of a table with a default integer index and the given columns:
/// `{1: {'names': [None], 'type': 'Index'}, 'index': {}, col: {}, ...}`.
pub fn table_info(columns: &[&str]) -> String {
    let mut out = String::from("(dI1\n(dVnames\n(lNasVtype\nVIndex\nssVindex\n(ds");
    for c in columns {
        unicode(c, &mut out);
        out.push_str("(ds");
    }
    out.push('.');
    out
}

/// The strings of a protocol-0 pickle of a list of str (`(lp0\nVa\np1\na.`, as PyTables and
/// [`str_list`] write them, or one nested in a tuple as in `non_index_axes`): each `V<text>`
/// opcode is one string, its escapes undone. A line is a run of argument-less opcodes, then
/// at most one opcode whose argument runs to the end of the line.
pub fn strings(text: &str) -> Vec<String> {
    text.split('\n')
        .filter_map(|line| {
            line.trim_start_matches(|c| "(latsdN".contains(c))
                .strip_prefix('V')
        })
        .map(unescape)
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let width = match tail.as_bytes().first() {
            Some(b'u') => 4,
            Some(b'U') => 8,
            _ => 0,
        };
        let code = tail
            .get(1..1 + width)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) if width > 0 => {
                out.push(c);
                rest = &tail[1 + width..];
            }
            _ => {
                out.push('\\');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_with_escapes() {
        let names = ["pt", "log(pt)", "a\\b", "line\nbreak", "é"];
        assert_eq!(strings(&str_list(&names)), names);
        assert_eq!(strings(&axis_list(1, &names)), names);
        // What PyTables itself wrote for a pandas table (memo opcodes included).
        assert_eq!(
            strings("(lp0\nVvalues_block_0\np1\naVpt\np2\na."),
            ["values_block_0", "pt"]
        );
        assert_eq!(str_list(&["a"]), "(lVa\na.");
    }
}
