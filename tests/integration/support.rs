//! Shared helpers for the integration tests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clinicflow::flow::bot::Bot;
use clinicflow::flow::compile::compile_dir;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The demo clinic, compiled once for the whole test binary.
pub fn demo() -> Arc<Bot> {
    static BOT: OnceLock<Arc<Bot>> = OnceLock::new();
    BOT.get_or_init(|| match compile_dir(root()) {
        Ok(b) => Arc::new(b),
        Err(d) => panic!("the demo clinic does not compile:\n{}", d.render()),
    })
    .clone()
}

/// Copies the demo bot (flows, prompts, schemas) into a temporary folder.
pub fn demo_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for sub in ["flows", "prompts", "schemas"] {
        copy_tree(&root().join(sub), &tmp.path().join(sub));
    }
    tmp
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let dest = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_tree(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).expect("copy");
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clinicflow")
}
