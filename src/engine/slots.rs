//! Which slot an extracted value goes to. Shared by `step` and by `clinicflow eval`, so the
//! evaluation scores understanding exactly as a real turn would use it.

use crate::flow::bot::Flow;
use crate::nlu::EntityKind;

/// The slot of `flow` a value of `kind` fills: the slot the bot just asked for when it is of
/// that kind; otherwise the flow's only slot of that kind; with several, the first one still
/// empty (`is_filled` says which are). None when the flow has no slot for it.
pub fn target_slot(
    flow: &Flow,
    kind: EntityKind,
    pending: Option<&str>,
    is_filled: impl Fn(&str) -> bool,
) -> Option<String> {
    let pending_kind = pending.and_then(|p| flow.slot(p)).and_then(|s| s.entity);
    if pending_kind == Some(kind) {
        return pending.map(str::to_string);
    }
    let same: Vec<&str> = flow
        .slots
        .iter()
        .filter(|s| s.entity == Some(kind))
        .map(|s| s.name.as_str())
        .collect();
    match same.as_slice() {
        [one] => Some(one.to_string()),
        [] => None,
        many => many.iter().find(|n| !is_filled(n)).map(|n| n.to_string()),
    }
}
