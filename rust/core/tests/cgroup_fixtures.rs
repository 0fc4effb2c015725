//! Every fixture tree under `tests/compat/fixtures/cgroup/` gives the CPU and
//! memory limits its `expected.json` states (the Python backend is checked
//! against the same files), and the README table agrees with them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sky_rs_core::{cpu, memory};

const MIN_FIXTURES: usize = 40;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/fixtures/cgroup")
}

#[derive(Debug, PartialEq, Eq)]
struct Expected {
    description: String,
    physical: Option<u64>,
    cpus: Option<u64>,
    memory_bytes: Option<u64>,
}

/// An `int | null` field; anything else is a broken fixture.
fn optional_u64(json: &Value, key: &str, case: &str) -> Option<u64> {
    match &json[key] {
        Value::Null => None,
        value => Some(
            value
                .as_u64()
                .unwrap_or_else(|| panic!("{case}: {key} is neither null nor an int: {value}")),
        ),
    }
}

fn load_expected(case_dir: &Path) -> Expected {
    let case = case_dir.file_name().unwrap().to_string_lossy().into_owned();
    let path = case_dir.join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{case}: fixture without a readable expected.json: {e}"));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}: bad expected.json: {e}"));
    let object = json
        .as_object()
        .unwrap_or_else(|| panic!("{case}: not an object"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["cpus", "description", "memory_bytes", "physical"],
        "{case}: unexpected keys"
    );
    Expected {
        description: json["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: description is not a string"))
            .to_owned(),
        physical: optional_u64(&json, "physical", &case),
        cpus: optional_u64(&json, "cpus", &case),
        memory_bytes: optional_u64(&json, "memory_bytes", &case),
    }
}

/// Every fixture directory (each entry of the fixtures dir except README.md),
/// by name.
fn load_fixtures() -> BTreeMap<String, (PathBuf, Expected)> {
    let mut fixtures = BTreeMap::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures directory") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        assert!(path.is_dir(), "{name}: stray file among the fixture cases");
        let root = path.join("root");
        assert!(root.is_dir(), "{name}: fixture without a root/ directory");
        let expected = load_expected(&path);
        fixtures.insert(name, (root, expected));
    }
    fixtures
}

#[test]
fn every_fixture_gives_its_expected_limits() {
    let fixtures = load_fixtures();
    assert!(
        fixtures.len() >= MIN_FIXTURES,
        "only {} fixtures found in {}",
        fixtures.len(),
        fixtures_dir().display()
    );
    let mut failures = Vec::new();
    for (name, (root, expected)) in &fixtures {
        let cpus = cpu::cgroup_cpu_limit(root);
        if cpus != expected.cpus {
            failures.push(format!(
                "{name}: cpus {cpus:?}, expected {:?}",
                expected.cpus
            ));
        }
        let memory_bytes = memory::cgroup_memory_limit(root, expected.physical);
        if memory_bytes != expected.memory_bytes {
            failures.push(format!(
                "{name}: memory_bytes {memory_bytes:?}, expected {:?}",
                expected.memory_bytes
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `null` or the decimal value, as the README writes it.
fn cell(value: Option<u64>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

#[test]
fn readme_table_matches_expected_json() {
    let readme = std::fs::read_to_string(fixtures_dir().join("README.md")).expect("README.md");
    let mut rows = BTreeMap::new();
    for line in readme.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [case, shape, physical, cpus, memory_bytes] = cells[..] else {
            panic!("README row without five cells: {line}");
        };
        let case = case.trim_matches('`').to_owned();
        let row = [shape, physical, cpus, memory_bytes].map(str::to_owned);
        assert!(
            rows.insert(case.clone(), row).is_none(),
            "{case}: listed twice"
        );
    }
    let fixtures = load_fixtures();
    let from_json: BTreeMap<String, [String; 4]> = fixtures
        .iter()
        .map(|(name, (_, expected))| {
            let row = [
                expected.description.clone(),
                cell(expected.physical),
                cell(expected.cpus),
                cell(expected.memory_bytes),
            ];
            (name.clone(), row)
        })
        .collect();
    let names: BTreeSet<&String> = rows.keys().chain(from_json.keys()).collect();
    let differences: Vec<String> = names
        .into_iter()
        .filter(|name| rows.get(*name) != from_json.get(*name))
        .map(|name| {
            format!(
                "{name}: README {:?}, expected.json {:?}",
                rows.get(name),
                from_json.get(name)
            )
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
