//! Replays every fuzz target's seed corpus and regressions through the target's entry point,
//! as libFuzzer would run them: an input that once crashed stays a failing test.
//!
//! `fuzz/corpus/<target>/` holds the seeds (and, after a run, what the fuzzer kept:
//! `scripts/fuzz.sh` minimizes it back into the repository); `fuzz/regressions/<target>/`
//! holds every input that ever crashed a target, named after the finding.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable corpus folder").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus_and_a_fuzz_target() {
    for (target, _) in portvakt_fuzz::TARGETS {
        let seeds = fuzz_dir().join("corpus").join(target);
        let count = std::fs::read_dir(&seeds)
            .unwrap_or_else(|e| panic!("{}: {e}", seeds.display()))
            .count();
        assert!(count > 0, "no seeds in {}", seeds.display());
        let source = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            text.contains(&format!("portvakt_fuzz::{target}::run")),
            "{} does not call portvakt_fuzz::{target}::run",
            source.display()
        );
    }
}

macro_rules! replay {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            let files = inputs(stringify!($target));
            assert!(!files.is_empty(), "no inputs for {}", stringify!($target));
            for file in &files {
                let data = std::fs::read(file).expect("a readable corpus file");
                let outcome = std::panic::catch_unwind(|| portvakt_fuzz::$target::run(&data));
                assert!(outcome.is_ok(), "{} fails on {}", stringify!($target), file.display());
            }
        }
    )*};
}

replay!(
    token, jwks, payload, introspect, path, manifest, policy, assertion
);
