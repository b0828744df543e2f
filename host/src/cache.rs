//! Precompiled components, cached on disk. The key is the SHA-256 of the `.wasm` plus the
//! engine's `precompile_compatibility_hash` and [`crate::preinit::VERSION`], never the file
//! name, so a rebuilt component or an upgraded wasmtime misses the cache instead of loading
//! stale code.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Loads the component in `wasm` (its bytes), from `cache_dir` when present there, otherwise
/// compiling what `prepare` makes of it (see [`crate::preinit::prepare`]) and storing that under
/// the key of `wasm`. Should what `prepare` made not compile, `wasm` itself is compiled: a
/// rewrite is an optimisation, never a reason not to start. A cache that cannot be written only
/// costs the next start a compile. The flag tells whether the cache answered.
pub(crate) fn load<'a>(
    engine: &Engine,
    wasm: &'a [u8],
    cache_dir: Option<&Path>,
    prepare: impl FnOnce(&'a [u8]) -> Cow<'a, [u8]>,
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = cache_dir else {
        let compiled = compile(engine, wasm, prepare)?;
        // SAFETY: the bytes were produced by `precompile_component` of this engine.
        return Ok((unsafe { Component::deserialize(engine, &compiled) }?, false));
    };
    let path = entry(engine, wasm, dir);
    if path.exists() {
        // SAFETY: `deserialize_file` trusts its input to be wasmtime's own output. Only this
        // function writes into the cache directory, atomically (temp file + rename), under a
        // name bound to the wasm's hash and this engine's compatibility hash.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, true)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cache entry")
            }
        }
    }
    let compiled = compile(engine, wasm, prepare)?;
    if let Err(e) = store(&path, &compiled) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the compile cache");
    }
    // SAFETY: the bytes were produced by `precompile_component` of this engine just above.
    let component = unsafe { Component::deserialize(engine, &compiled) }?;
    Ok((component, false))
}

/// Compiles what `prepare` makes of `wasm`, or `wasm` itself when that fails to compile.
fn compile<'a>(
    engine: &Engine,
    wasm: &'a [u8],
    prepare: impl FnOnce(&'a [u8]) -> Cow<'a, [u8]>,
) -> wasmtime::Result<Vec<u8>> {
    match prepare(wasm) {
        Cow::Borrowed(same) => engine.precompile_component(same),
        Cow::Owned(rewritten) => engine.precompile_component(&rewritten).or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "the rewritten component does not compile; compiling it as it is");
            engine.precompile_component(wasm)
        }),
    }
}

fn entry(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let digest = Sha256::digest(wasm);
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    crate::preinit::VERSION.hash(&mut compat);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{hex}-{:016x}.cwasm", compat.finish()))
}

fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The default cache directory: `$XDG_CACHE_HOME/mcp-auth`, else `$HOME/.cache/mcp-auth`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("mcp-auth"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_rewrite_that_does_not_compile_falls_back_to_the_original() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        for cache in [None, Some(dir.path())] {
            let rewritten = |_: &[u8]| Cow::Owned(b"not wasm".to_vec());
            assert!(load(&engine, EMPTY_COMPONENT, cache, rewritten).is_ok());
            // The original itself broken is an error, cache or not.
            assert!(load(&engine, b"not wasm", cache, Cow::Borrowed).is_err());
        }
    }
}
