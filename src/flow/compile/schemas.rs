//! Slot schemas (schemas/*.json), compiled once. The lists that belong to the clinic
//! (specialties, coverages, professionals) live in flows/clinic.yaml only: a schema says
//! `"x-clinic": "specialties"` and its `enum` is generated from clinic.yaml here, so adding a
//! specialty is one edit. A schema that still keeps such a list by hand is checked against
//! clinic.yaml and any disagreement reported.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{Sources, line_offset, pos_of};
use crate::flow::clinic::Clinic;
use crate::flow::diag::{Diagnostic, Diagnostics};
use crate::flow::yaml::Pos;

/// The keyword naming the clinic.yaml list a schema's `enum` comes from.
pub const CLINIC_KEY: &str = "x-clinic";
/// The lists `x-clinic` can name.
pub const LISTS: [&str; 3] = ["specialties", "coverages", "professionals"];

pub(crate) struct Loaded {
    pub validators: HashMap<String, Arc<jsonschema::Validator>>,
    /// Each schema as used (lists filled in), for the LLM's answer schema.
    pub values: HashMap<String, Value>,
    /// Schema files that exist but have errors (already reported).
    pub broken: Vec<String>,
}

/// The canonical names of a clinic.yaml list (coverages include "Particular" when the
/// clinic sees private patients, as the NLU produces it).
pub fn clinic_list(clinic: &Clinic, list: &str) -> Option<Vec<String>> {
    let mut names: Vec<String> = match list {
        "specialties" => clinic.specialties.iter().map(|s| s.name.clone()).collect(),
        "coverages" => {
            let mut v: Vec<String> = clinic.coverages.iter().map(|c| c.name.clone()).collect();
            if clinic.private_patients {
                v.push(crate::nlu::entities::PRIVATE.to_string());
            }
            v
        }
        "professionals" => clinic
            .specialties
            .iter()
            .flat_map(|s| s.professionals.iter().map(|p| p.name.clone()))
            .collect(),
        _ => return None,
    };
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    Some(names)
}

pub(crate) fn load(sources: &Sources, clinic: Option<&Clinic>, diags: &mut Diagnostics) -> Loaded {
    let mut out = Loaded {
        validators: HashMap::new(),
        values: HashMap::new(),
        broken: Vec::new(),
    };
    for (path, src) in sources.schema_files() {
        if path.ends_with("flow.schema.json") {
            continue; // the editor schema for the YAML files, not a slot schema
        }
        let name = path.trim_start_matches("schemas/").to_string();
        let mut value: Value = match serde_json::from_str(src) {
            Ok(v) => v,
            Err(e) => {
                let pos = Pos {
                    line: e.line(),
                    col: e.column(),
                    offset: line_offset(src, e.line()) + e.column().saturating_sub(1),
                };
                diags.push(Diagnostic::new(
                    path,
                    src,
                    pos,
                    format!("this schema is not valid JSON: {e}"),
                ));
                out.broken.push(name);
                continue;
            }
        };
        if let Some(clinic) = clinic
            && let Err(d) = clinic_lists(path, src, &mut value, clinic)
        {
            diags.push(*d);
            out.broken.push(name);
            continue;
        }
        match jsonschema::validator_for(&value) {
            Ok(v) => {
                out.validators.insert(name.clone(), Arc::new(v));
                out.values.insert(name, value);
            }
            Err(e) => {
                let d = match super::hints::json_schema(&value) {
                    Some((msg, hint, key)) => {
                        let offset = src.find(&format!("\"{key}\"")).unwrap_or(0);
                        Diagnostic::new(path, src, pos_of(src, offset), format!("invalid JSON Schema: {msg}"))
                            .with_span(offset, key.len() + 2)
                            .with_hint(hint)
                    }
                    None => Diagnostic::new(
                        path,
                        src,
                        Pos {
                            line: 1,
                            col: 1,
                            offset: 0,
                        },
                        format!("invalid JSON Schema: {e}"),
                    ),
                };
                diags.push(d);
                out.broken.push(name);
            }
        }
    }
    out
}

/// Fills the `enum` of an `x-clinic` schema from clinic.yaml; reports a hand-kept list of
/// specialties, coverages or professionals that disagrees with clinic.yaml.
fn clinic_lists(path: &str, src: &str, value: &mut Value, clinic: &Clinic) -> Result<(), Box<Diagnostic>> {
    let at = |key: &str| {
        let offset = src.find(&format!("\"{key}\"")).unwrap_or(0);
        Diagnostic::new(path, src, pos_of(src, offset), String::new()).with_span(offset, key.len() + 2)
    };
    let Some(obj) = value.as_object_mut() else {
        return Ok(());
    };
    if let Some(list) = obj.get(CLINIC_KEY) {
        let names = list.as_str().and_then(|l| clinic_list(clinic, l)).ok_or_else(|| {
            let mut d =
                at(CLINIC_KEY).with_help(format!("use one of: {}", LISTS.map(|l| format!("\"{l}\"")).join(", ")));
            d.message = format!("`{CLINIC_KEY}` must name a list of flows/clinic.yaml, not {list}");
            Box::new(d)
        })?;
        if let Some(Value::Array(kept)) = obj.get("enum")
            && let Some(diff) = disagreement(kept, &names)
        {
            let mut d = at("enum").with_help(format!(
                "delete `enum`: with `\"{CLINIC_KEY}\"` the list comes from flows/clinic.yaml alone"
            ));
            d.message = format!("this `enum` disagrees with flows/clinic.yaml: {diff}");
            return Err(Box::new(d));
        }
        obj.insert("enum".into(), names.into_iter().map(Value::String).collect());
        return Ok(());
    }
    let Some(Value::Array(kept)) = obj.get("enum") else {
        return Ok(());
    };
    for list in LISTS {
        let names = clinic_list(clinic, list).unwrap_or_default();
        let overlaps = kept
            .iter()
            .filter_map(Value::as_str)
            .any(|k| names.iter().any(|n| n == k) && k != crate::nlu::entities::PRIVATE);
        if overlaps && let Some(diff) = disagreement(kept, &names) {
            let mut d = at("enum").with_help(format!(
                "replace `enum` with `\"{CLINIC_KEY}\": \"{list}\"` so the list comes from flows/clinic.yaml alone"
            ));
            d.message = format!("this list of {list} disagrees with flows/clinic.yaml: {diff}");
            return Err(Box::new(d));
        }
    }
    Ok(())
}

/// "missing Neurología; not in clinic.yaml: Podología", or None when both hold the same names.
fn disagreement(kept: &[Value], names: &[String]) -> Option<String> {
    let kept: Vec<&str> = kept.iter().filter_map(Value::as_str).collect();
    let missing: Vec<&str> = names.iter().map(String::as_str).filter(|n| !kept.contains(n)).collect();
    let extra: Vec<&str> = kept.iter().copied().filter(|k| !names.iter().any(|n| n == k)).collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("not in clinic.yaml: {}", extra.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
