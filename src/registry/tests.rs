//! The registry's own unit tests: listing, registering, finding and unregistering.

use super::*;

fn registry(dir: &std::path::Path) -> Registry {
    Registry::new(Config::new(dir)).unwrap()
}

#[test]
fn list_covers_the_catalog_with_statuses() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path());
    let list = r.list();
    assert_eq!(list.len(), crate::catalog::BUILTIN.len());
    assert!(list.iter().all(|m| m.status == "not downloaded"));
    let row = serde_json::to_value(&list[1]).unwrap();
    assert_eq!((row["name"].as_str(), row["model"].as_str()), (Some("minilm:f16"), Some("minilm")));
    assert_eq!(row["size_bytes"], 45_949_216);
    assert_eq!(list[1].name, "minilm:f16");
    assert_eq!(list[0].aliases, ["all-minilm", "all-minilm-l6-v2"]);
}

#[test]
fn register_then_find_then_unregister() {
    let tmp = tempfile::tempdir().unwrap();
    let r = registry(tmp.path());
    let bytes = gguf::test_header("bert", 8, 7);
    let model = crate::CustomModel {
        name: "tiny".into(),
        hf_repo: "test/tiny".into(),
        hf_filename: "tiny-Q8_0.gguf".into(),
        revision: "1".repeat(40),
        sha256: "2".repeat(64),
        size_bytes: bytes.len() as u64,
        ..Default::default()
    };
    r.register(&model).unwrap();
    let r = registry(tmp.path());
    assert_eq!(r.resolve("TINY").unwrap().origin, crate::catalog::Origin::Custom);
    assert!(!r.is_downloaded("tiny").unwrap());
    fs::write(tmp.path().join("tiny-Q8_0.gguf"), &bytes).unwrap();
    assert_eq!(r.path("tiny").unwrap(), Some(tmp.path().join("tiny-Q8_0.gguf")));
    assert_eq!(r.read_header("tiny").unwrap().architecture.as_deref(), Some("bert"));
    assert!(r.remove("tiny").unwrap());
    assert!(matches!(r.read_header("tiny"), Err(RegistryError::NotDownloaded { .. })));
    r.unregister("tiny").unwrap();
    assert!(registry(tmp.path()).resolve("tiny").is_err());
    let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(names.iter().all(|n| n == "catalog.json" || n == ".strata"), "{names:?}");
}
