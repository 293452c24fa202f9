//! How strata-inference's `EmbeddingEngine::from_registry` is written on top of strata-model.
//!
//! `EmbeddingEngine` here is a stand-in for the real engine: it reads the GGUF header of the
//! file it is given, as the real one would start to. Run it with a models directory that
//! already holds the model, or with network access:
//!
//! ```sh
//! cargo run --features registry --example from_registry -- minilm
//! ```

use std::path::Path;

use strata_model::{ModelRegistry, RegistryError};

/// The architectures the stand-in engine can run (strata-inference's runner today).
const SUPPORTED_ARCHS: &[&str] = &["bert", "gemma-embedding", "qwen3"];

/// A stand-in for strata-inference's embedding engine.
#[derive(Debug)]
struct EmbeddingEngine {
    arch: String,
    dim: u64,
}

/// A stand-in for the engine's compute backend.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Cpu,
}

#[derive(Debug)]
enum EngineError {
    Registry(RegistryError),
    Load(String),
}

impl From<RegistryError> for EngineError {
    fn from(e: RegistryError) -> Self {
        Self::Registry(e)
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Registry(e) => write!(f, "{e}"),
            Self::Load(e) => write!(f, "cannot load the model: {e}"),
        }
    }
}

impl EmbeddingEngine {
    /// Loads a GGUF file (the stand-in reads its header only).
    fn from_gguf(path: &Path, _backend: Backend) -> Result<Self, EngineError> {
        let file = std::fs::File::open(path).map_err(|e| EngineError::Load(e.to_string()))?;
        let header = strata_model::gguf::read_header(std::io::BufReader::new(file))
            .map_err(|e| EngineError::Load(e.to_string()))?;
        Ok(Self {
            arch: header.architecture.unwrap_or_default(),
            dim: header.embedding_length.unwrap_or_default(),
        })
    }

    /// By name: downloads (once, verified) and loads. A model whose architecture the engine
    /// cannot run is refused before anything is downloaded.
    fn from_registry(name: &str, backend: Backend) -> Result<Self, EngineError> {
        let path = ModelRegistry::ensure_for_engine(name, SUPPORTED_ARCHS)?;
        Self::from_gguf(&path, backend)
    }
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "minilm".to_string());
    match EmbeddingEngine::from_registry(&name, Backend::Cpu) {
        Ok(engine) => println!("loaded {name}: arch {}, {} dimensions", engine.arch, engine.dim),
        Err(e) => {
            eprintln!("from_registry({name}): {e}");
            std::process::exit(1);
        }
    }
}
