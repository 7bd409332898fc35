//! Reading `include/rmsprop.h` as data: the functions it declares and the constants it
//! defines, for the tests that hold the library and the bindings to the header.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `include/rmsprop.h` of this checkout.
pub fn path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include/rmsprop.h")
}

/// The header's text.
pub fn text() -> String {
    std::fs::read_to_string(path()).unwrap_or_else(|e| panic!("read {}: {e}", path().display()))
}

/// Remove `/* */` and `//` comments (C, C++), so names that documentation mentions do
/// not count as uses. String literals are not special-cased: the headers hold none with
/// `//` or `/*` in them.
pub fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                let end = rest[b + 2..].find("*/").expect("unterminated comment") + b + 4;
                rest = &rest[end..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |n| &rest[l + n..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every identifier in `code` that starts with `prefix`, with the rest of the code after
/// it, in order of appearance (whole identifiers only: `xrmsprop_a` is not `rmsprop_a`).
fn identifiers<'a>(code: &'a str, prefix: &str) -> Vec<(&'a str, &'a str)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(pos) = code[i..].find(prefix) {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        if start == 0 || !is_ident(bytes[start - 1]) {
            found.push((&code[start..end], &code[end..]));
        }
        i = end.max(start + 1);
    }
    found
}

/// Every `rmsprop_*` function the header declares (an identifier followed by `(`, outside
/// comments), and the names declared more than once.
pub fn functions() -> (BTreeSet<String>, Vec<String>) {
    let code = strip_comments(&text());
    let mut names = BTreeSet::new();
    let mut repeated = Vec::new();
    for (name, after) in identifiers(&code, "rmsprop_") {
        if after.trim_start().starts_with('(') && !names.insert(name.to_string()) {
            repeated.push(name.to_string());
        }
    }
    (names, repeated)
}

/// Every `RMSPROP_*` constant the header defines: `#define RMSPROP_X ...` (less the include
/// guard `RMSPROP_H`) and enumerators `RMSPROP_X = ...` / `RMSPROP_X,` should a later
/// header use C enums.
pub fn constants() -> BTreeSet<String> {
    let code = strip_comments(&text());
    let mut names = BTreeSet::new();
    for line in code.lines() {
        let t = line.trim_start();
        let candidate = if let Some(rest) = t.strip_prefix("#define") {
            rest.trim_start()
        } else if t.starts_with("RMSPROP_") {
            let after = t.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
            let after = after.trim_start();
            if after.starts_with('=') || after.starts_with(',') || after.is_empty() {
                t
            } else {
                continue;
            }
        } else {
            continue;
        };
        let name: String = candidate
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with("RMSPROP_") && name != "RMSPROP_H" {
            names.insert(name);
        }
    }
    names
}

/// Whether `code` contains `name` as a whole identifier.
pub fn mentions(code: &str, name: &str) -> bool {
    let prefix = name;
    identifiers(code, prefix).iter().any(|(n, _)| *n == name)
}
