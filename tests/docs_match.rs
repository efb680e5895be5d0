//! docs/ARCHITECTURE.md's error table lists exactly the variants of `walden::Error`: a variant
//! added to the code without a row, or a row left for a variant that is gone, fails here with
//! its name.

use std::collections::BTreeSet;

fn variants_in_code() -> BTreeSet<String> {
    let src = include_str!("../src/error.rs");
    let body = &src[src.find("pub enum Error {").expect("the Error enum")..];
    let body = &body[..body.find("\n}\n").expect("its end")];
    body.lines()
        .filter_map(|line| {
            // Variants sit at four spaces of indentation; their fields and docs deeper or after `///`.
            let rest = line.strip_prefix("    ")?;
            let first = rest.chars().next()?;
            if !first.is_ascii_uppercase() {
                return None;
            }
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            Some(name)
        })
        .collect()
}

fn variants_in_docs() -> BTreeSet<String> {
    let doc = include_str!("../docs/ARCHITECTURE.md");
    let section = &doc[doc.find("## Errors").expect("an Errors section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next().map(str::to_owned))
        .collect()
}

#[test]
fn the_architecture_error_table_lists_every_error_variant() {
    let code = variants_in_code();
    let docs = variants_in_docs();
    assert!(code.len() > 10, "parsed the enum: {code:?}");
    let undocumented: Vec<_> = code.difference(&docs).collect();
    let stale: Vec<_> = docs.difference(&code).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "docs/ARCHITECTURE.md ## Errors: add rows for {undocumented:?}, remove rows for {stale:?}"
    );
}
