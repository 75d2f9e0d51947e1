//! The standalone source: a folder of Kubernetes YAML files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::objects::{ObjectKey, ObjectSet};
use crate::options::{TranslateOptions, TranslateState};
use crate::parse::{parse_documents, ParsedObject};
use crate::status::{Diagnostic, Translation};
use crate::translate::translate;

/// Reads every `*.yaml` / `*.yml` file of a folder (not recursively, hidden
/// files excepted) and
/// translates the objects. Keeps, per file, the last objects that parsed, so
/// a broken edit never takes working configuration away.
#[derive(Debug)]
pub struct DirSource {
    dir: PathBuf,
    opts: TranslateOptions,
    state: TranslateState,
    /// File → its last good objects, in document order.
    files: BTreeMap<PathBuf, Vec<ParsedObject>>,
    /// Object → (what its generation tracks, generation).
    generations: HashMap<ObjectKey, (serde_yaml::Value, i64)>,
}

impl DirSource {
    pub fn new(dir: PathBuf, opts: TranslateOptions) -> Self {
        DirSource {
            dir,
            opts,
            state: TranslateState::new(),
            files: BTreeMap::new(),
            generations: HashMap::new(),
        }
    }

    /// Re-reads the folder and translates everything.
    pub fn reload(&mut self) -> Translation {
        let mut errors = Vec::new();
        let paths = match yaml_files(&self.dir) {
            Ok(paths) => paths,
            Err(e) => {
                errors.push(Diagnostic {
                    file: Some(self.dir.display().to_string()),
                    object: None,
                    field: None,
                    message: format!("cannot read the folder: {e}"),
                });
                // Keep serving what we had.
                self.files.keys().cloned().collect()
            }
        };
        // Files that disappeared take their objects with them.
        self.files.retain(|path, _| paths.contains(path));
        for path in &paths {
            match std::fs::read_to_string(path) {
                Ok(text) => self.load_file(path, &text, &mut errors),
                Err(e) => errors.push(Diagnostic {
                    file: Some(path.display().to_string()),
                    object: None,
                    field: None,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        let objects = self.objects(&mut errors);
        let mut translation = translate(&objects, &self.opts, &mut self.state);
        errors.append(&mut translation.errors);
        translation.errors = errors;
        translation
    }

    /// Parses one file. When a document fails, the file keeps its previous
    /// objects, updated by the documents that did parse.
    fn load_file(&mut self, path: &Path, text: &str, errors: &mut Vec<Diagnostic>) {
        let mut parsed = Vec::new();
        let mut failed = false;
        for result in parse_documents(text) {
            match result {
                Ok(object) => parsed.push(object),
                Err(e) => {
                    failed = true;
                    errors.push(Diagnostic {
                        file: Some(path.display().to_string()),
                        object: e.object.clone(),
                        field: e.field.clone(),
                        message: format!(
                            "line {}: {}; keeping this file's last good objects",
                            e.line, e.message
                        ),
                    });
                }
            }
        }
        if failed {
            let mut merged = self.files.get(path).cloned().unwrap_or_default();
            for object in parsed {
                let key = object.object.key();
                match merged.iter_mut().find(|o| o.object.key() == key) {
                    Some(slot) => *slot = object,
                    None => merged.push(object),
                }
            }
            parsed = merged;
        }
        self.files.insert(path.to_path_buf(), parsed);
    }

    /// All objects, with generations assigned. An object defined in two
    /// files is taken from the first file (in name order) and reported.
    fn objects(&mut self, errors: &mut Vec<Diagnostic>) -> ObjectSet {
        let mut seen: BTreeMap<ObjectKey, PathBuf> = BTreeMap::new();
        let mut set = ObjectSet::new();
        let mut generations = HashMap::new();
        for (path, objects) in &self.files {
            for parsed in objects {
                let key = parsed.object.key();
                if let Some(first) = seen.get(&key) {
                    errors.push(Diagnostic {
                        file: Some(path.display().to_string()),
                        object: Some(key.to_string()),
                        field: None,
                        message: format!(
                            "also defined in {}; that definition is used",
                            first.display()
                        ),
                    });
                    continue;
                }
                seen.insert(key.clone(), path.clone());
                let mut object = parsed.object.clone();
                // "1 on first sight, +1 each time the object's spec changes".
                let generation = match (
                    parsed.explicit_generation,
                    object.generation(),
                    self.generations.get(&key),
                ) {
                    (true, Some(g), _) => g,
                    (_, _, Some((source, g))) if *source == parsed.generation_source => *g,
                    (_, _, Some((_, g))) => g + 1,
                    _ => 1,
                };
                object.set_generation(generation);
                generations.insert(key, (parsed.generation_source.clone(), generation));
                set.insert(object);
            }
        }
        self.generations = generations;
        set
    }
}

fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        // Editors' lock and swap files (`.#a.yaml`, `.a.yaml.swp`) are not configuration.
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    paths.sort();
    Ok(paths)
}
