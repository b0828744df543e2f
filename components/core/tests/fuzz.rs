//! The fuzz targets (`mcp_auth_core::fuzz`) in every `cargo test`: each over its committed
//! seed corpus (`fuzz/corpus/<target>/`, also libFuzzer's starting point), then over seeds
//! mutated at random and over random bytes. The long, coverage-guided run is `scripts/fuzz`.

use std::path::{Path, PathBuf};

use mcp_auth_core::fuzz::TARGETS;
use proptest::prelude::*;
use proptest::sample::Index;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

#[test]
fn every_target_passes_its_seed_corpus() {
    for (name, target) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for seed in &seeds {
            target(seed);
        }
    }
}

/// An edit of a seed: overwrite, insert or delete one byte.
fn edit() -> impl Strategy<Value = (u8, Index, u8)> {
    (0u8..3, any::<Index>(), any::<u8>())
}

fn mutate(mut data: Vec<u8>, edits: &[(u8, Index, u8)]) -> Vec<u8> {
    for (kind, at, byte) in edits {
        match (kind, data.is_empty()) {
            (0, false) => {
                let i = at.index(data.len());
                data[i] = *byte;
            }
            (1, _) => data.insert(at.index(data.len() + 1), *byte),
            (_, false) => {
                data.remove(at.index(data.len()));
            }
            _ => {}
        }
    }
    data
}

proptest! {
    #[test]
    fn mutated_seeds(target in any::<Index>(), seed in any::<Index>(),
                     edits in prop::collection::vec(edit(), 1..16)) {
        let (name, run) = TARGETS[target.index(TARGETS.len())];
        let seeds = corpus(name);
        run(&mutate(seeds[seed.index(seeds.len())].clone(), &edits));
    }

    #[test]
    fn random_bytes(target in any::<Index>(), data in prop::collection::vec(any::<u8>(), 0..512)) {
        let (_, run) = TARGETS[target.index(TARGETS.len())];
        run(&data);
    }
}
