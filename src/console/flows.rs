//! The flows page (admins): every flow in force drawn as a diagram (the same SVG as
//! `clinicflow graph --format svg`), the last reload with each diagnostic and its source
//! excerpt, and the problems met while talking since.

use poem::{Request, Response, handler};
use serde_json::json;

use super::{Page, Staff, State};

#[handler]
pub(super) async fn page(state: State<'_>, req: &Request, staff: Staff) -> poem::Result<Response> {
    staff.admin()?;
    let bot = state.service.bot();
    let flows: Vec<_> = bot
        .flows
        .iter()
        .map(|f| {
            json!({
                "name": f.name, "description": f.description, "file": f.file,
                "triggers": f.triggers, "svg": crate::flow::graph::svg(&bot, f),
            })
        })
        .collect();
    let report = state.reloader.last();
    let view = Page::new(&state, req, "flows.html")
        .staff(&staff)
        .with("flows", flows)
        .with("report", &report);
    Ok(state.console.render(view))
}
