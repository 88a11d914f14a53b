//! schemas/flow.schema.json is what editors use to validate and autocomplete flow files:
//! every file in flows/ must validate against it, and a typo must not.

use clinicflow::flow::yaml;

use crate::support::root;

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas/flow.schema.json")).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

#[test]
fn every_demo_file_validates_against_the_editor_schema() {
    let v = validator();
    let mut count = 0;
    for entry in std::fs::read_dir(root().join("flows")).expect("flows") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("read");
        let doc = yaml::parse(&src).expect("yaml");
        let errors: Vec<String> = v
            .iter_errors(&doc.value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        count += 1;
    }
    assert!(count >= 10, "only {count} files checked");
}

#[test]
fn the_editor_schema_rejects_typos() {
    let v = validator();
    let src = std::fs::read_to_string(root().join("flows/book_appointment.yaml")).expect("read");
    let broken = src.replacen("collect:", "colect:", 1);
    let doc = yaml::parse(&broken).expect("yaml");
    assert!(!v.is_valid(&doc.value));
}

/// The commented-out `whatsapp:` example in the demo's clinic.yaml, switched on, is valid for
/// the editor too, and a ContentSid that is not one is not.
#[test]
fn the_editor_schema_knows_the_whatsapp_template() {
    let v = validator();
    let src = std::fs::read_to_string(root().join("flows/clinic.yaml")).expect("read");
    let on = src
        .replace("  # whatsapp:", "  whatsapp:")
        .replace("  #   reminder_template:", "    reminder_template:")
        .replace("  #     content_sid:", "      content_sid:")
        .replace("  #     variables:", "      variables:")
        .replace("  #       \"", "        \"");
    assert_ne!(on, src, "the demo's clinic.yaml has the commented example");
    let doc = yaml::parse(&on).expect("yaml");
    let errors: Vec<String> = v.iter_errors(&doc.value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let wrong = on.replace("HX0123456789abcdef0123456789abcdef", "HX123");
    assert!(!v.is_valid(&yaml::parse(&wrong).expect("yaml").value));
}
