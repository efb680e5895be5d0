//! The layering rules of `src/`, checked on every test run: no module reaches up a floor of the
//! layer order written in `docs/ARCHITECTURE.md`, no import cycle between files, no `std::fs`
//! outside `src/io/`, no file over 600 lines and no function over 70 lines without a comment
//! saying why. Small fixtures below make sure the checker itself catches each kind of breach.

mod checker;

use std::path::Path;

use checker::{check, Layers, Source};

fn sources_under(root: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push(Source { path: rel, text: std::fs::read_to_string(&path).unwrap() });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[test]
fn src_follows_the_layer_order_of_the_architecture_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let layers = Layers::parse(&doc).unwrap();
    let report = check(&sources_under(&root.join("src")), &layers);
    assert!(report.is_empty(), "layering rules broken:\n{}", report.join("\n"));
}

// ---- fixtures: the checker must catch each breach, naming file and line ----

const LAYERS: &str = "```layers\nlow: io\nmid: wal\nhigh: store\n```";

fn fixture(files: &[(&str, &str)]) -> Vec<String> {
    let sources: Vec<Source> =
        files.iter().map(|(p, t)| Source { path: (*p).into(), text: (*t).into() }).collect();
    check(&sources, &Layers::parse(LAYERS).unwrap())
}

const LIB: &str = "mod io;\nmod wal;\nmod store;\npub use store::Store;\n";

#[test]
fn a_clean_tree_passes() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", "pub fn read() {}\n"),
        ("wal/mod.rs", "use crate::io::read;\npub fn append() { read() }\n"),
        ("store/mod.rs", "use crate::wal::append;\npub struct Store;\n"),
    ]);
    assert_eq!(report, Vec::<String>::new());
}

#[test]
fn an_upward_use_is_reported_with_file_and_line() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", "\n\nuse crate::wal::append;\n"),
        ("wal/mod.rs", "pub fn append() {}\n"),
        ("store/mod.rs", "pub struct Store;\n"),
    ]);
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(
        report[0].starts_with("src/io/mod.rs:3: `crate::wal::append` reaches up"),
        "{report:?}"
    );
}

#[test]
fn a_path_inside_a_function_counts_too() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", "pub fn f() {\n    let _ = crate::store::Store;\n}\n"),
        ("wal/mod.rs", ""),
        ("store/mod.rs", "pub struct Store;\n"),
    ]);
    assert!(report.iter().any(|r| r.starts_with("src/io/mod.rs:2:")), "{report:?}");
}

#[test]
fn a_crate_root_reexport_counts_as_the_module_it_comes_from() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", "use crate::Store;\n"),
        ("wal/mod.rs", ""),
        ("store/mod.rs", "pub struct Store;\n"),
    ]);
    assert!(
        report.iter().any(|r| r.contains("src/io/mod.rs:1: `crate::Store` reaches up")),
        "{report:?}"
    );
}

#[test]
fn super_paths_and_grouped_uses_are_read() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", "mod disk;\n"),
        ("io/disk.rs", "use super::super::{wal::append, store::Store};\n"),
        ("wal/mod.rs", "pub fn append() {}\n"),
        ("store/mod.rs", "pub struct Store;\n"),
    ]);
    assert_eq!(report.len(), 2, "{report:?}");
    assert!(report.iter().all(|r| r.starts_with("src/io/disk.rs:1:")), "{report:?}");
}

#[test]
fn comments_strings_and_test_modules_are_not_code() {
    let report = fixture(&[
        ("lib.rs", LIB),
        (
            "io/mod.rs",
            "// crate::store::Store\n/// [`x`](crate::store::Store)\nconst S: &str = \"crate::store::Store\";\n\
             #[cfg(test)]\nmod tests {\n    use crate::store::Store;\n    fn f() { std::fs::read(\"x\"); }\n}\n",
        ),
        ("wal/mod.rs", ""),
        ("store/mod.rs", "pub struct Store;\n"),
    ]);
    assert_eq!(report, Vec::<String>::new());
}

#[test]
fn an_import_cycle_between_files_is_reported() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", ""),
        ("wal/mod.rs", "mod a;\nmod b;\n"),
        ("wal/a.rs", "use super::b::B;\npub struct A;\n"),
        ("wal/b.rs", "use super::a::A;\npub struct B;\n"),
        ("store/mod.rs", ""),
    ]);
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(report[0].contains("import cycle between files"), "{report:?}");
}

#[test]
fn a_reexported_name_used_by_its_own_table_of_contents_is_an_edge() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", ""),
        (
            "wal/mod.rs",
            "mod frame;\npub use frame::Frame;\npub struct Log { last: Frame }\npub fn lsn() {}\n",
        ),
        ("wal/frame.rs", "use super::lsn;\npub struct Frame;\n"),
        ("store/mod.rs", ""),
    ]);
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(report[0].contains("import cycle between files"), "{report:?}");
}

#[test]
fn std_fs_outside_the_io_seam_is_reported() {
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", "pub fn r() { let _ = std::fs::read(\"x\"); }\n"),
        ("wal/mod.rs", "\npub fn r() { let _ = std::fs::read(\"x\"); }\n"),
        ("store/mod.rs", ""),
    ]);
    assert_eq!(report, vec!["src/wal/mod.rs:2: std::fs outside src/io/".to_owned()]);
}

#[test]
fn long_files_and_unexplained_long_functions_are_reported() {
    let long_fn = format!("fn long() {{\n{}}}\n", "    step();\n".repeat(80));
    let excused = format!("// {} it is a table.\n{long_fn}", checker::LONG_FN_REASON);
    let long_file = "\n".repeat(checker::MAX_FILE_LINES + 1);
    let report = fixture(&[
        ("lib.rs", LIB),
        ("io/mod.rs", &long_fn),
        ("wal/mod.rs", &excused),
        ("store/mod.rs", &long_file),
    ]);
    assert_eq!(report.len(), 2, "{report:?}");
    assert!(report[0].starts_with("src/io/mod.rs:1: function of 82 lines"), "{report:?}");
    assert!(report[1].starts_with("src/store/mod.rs:1: 601 lines"), "{report:?}");
}

#[test]
fn a_module_on_no_floor_is_reported() {
    let report =
        fixture(&[("lib.rs", "mod io;\nmod extra;\n"), ("io/mod.rs", ""), ("extra.rs", "")]);
    assert_eq!(
        report,
        vec!["src/extra.rs:1: module `extra` is on no floor of the layer order".to_owned()]
    );
}
