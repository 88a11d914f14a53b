//! The console's file editor in process (a copy of the demo clinic in a temporary folder):
//! a saved reply is live at once; a broken flow is refused with file:line:column and nothing
//! is written; paths outside the clinic's files are 4xx; receptionists get 403; a form
//! without the CSRF token and a save over a newer version are refused; a rollback is a new
//! version, and one that no longer compiles is refused. The real-browser version is
//! tests/browser/editor.mjs.

use clinicflow::console::Console;
use clinicflow::flow::compile::compile_dir;
use clinicflow::server::AppState;
use clinicflow::store::VersionKind;
use poem::http::StatusCode;

use crate::console::{Browser, PASSWORD, accounts};
use crate::support::{demo_copy, say};

const GREETING: &str = "prompts/es/greeting.j2";
const NEW_GREETING: &str = "¿en qué le puedo ayudar hoy?";

/// A state over its own copy of the demo clinic (the folder lives as long as the guard).
pub async fn editable() -> (AppState, tempfile::TempDir) {
    let dir = demo_copy();
    let bot = compile_dir(dir.path())
        .map_err(|d| d.render())
        .expect("the copy compiles");
    let state = crate::api::state_for(std::sync::Arc::new(bot), dir.path())
        .await
        .with_console(Console::new(accounts()));
    (state, dir)
}

/// The value of the hidden field `name` in a page.
pub fn field(body: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = body.find(&key).unwrap_or_else(|| panic!("no field {name} in {body}")) + key.len();
    body[at..].split('"').next().unwrap_or_default().to_string()
}

/// The page's text with minijinja's escaped slashes (`&#x2f;`) back.
fn shown(body: &str) -> String {
    body.replace("&#x2f;", "/")
}

async fn admin(state: &AppState) -> Browser {
    let b = Browser::new(state.clone());
    assert_eq!(b.login("root", PASSWORD).await.status, StatusCode::SEE_OTHER);
    b
}

fn read(dir: &tempfile::TempDir, path: &str) -> String {
    std::fs::read_to_string(dir.path().join(path)).expect("read")
}

async fn greeting(state: &AppState, session: &str) -> String {
    say(&state.service, session, "hola", "2026-11-23T10:00")
        .await
        .replies
        .join(" ")
}

#[tokio::test]
async fn a_saved_reply_is_live_at_once_and_a_broken_flow_is_refused_with_its_position() {
    let (state, dir) = editable().await;
    let b = admin(&state).await;
    assert!(greeting(&state, "e1").await.contains("¿en qué puedo ayudarlo?"));

    let files = b.get("/console/editor").await;
    assert_eq!(files.status, StatusCode::OK);
    for f in [
        "flows/clinic.yaml",
        "flows/intents.yaml",
        GREETING,
        "schemas/flow.schema.json",
    ] {
        assert!(shown(&files.body).contains(f), "{f} is listed");
    }
    let page = b.get(&format!("/console/editor/file?path={GREETING}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let original = read(&dir, GREETING);
    let (csrf, base) = (page.csrf(), field(&page.body, "base"));
    // What a browser posts: CRLF line ends.
    let edited = original
        .replace("¿en qué puedo ayudarlo?", NEW_GREETING)
        .replace('\n', "\r\n");

    let checked = b
        .post(
            "/console/editor/file",
            &[
                ("csrf", &csrf),
                ("path", GREETING),
                ("base", &base),
                ("content", &edited),
                ("action", "check"),
            ],
        )
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert!(checked.body.contains("Todavía no está guardado"), "{}", checked.body);
    assert_eq!(read(&dir, GREETING), original, "a check writes nothing");

    let saved = b
        .post(
            "/console/editor/file",
            &[
                ("csrf", &csrf),
                ("path", GREETING),
                ("base", &base),
                ("content", &edited),
                ("note", "saludo más cercano"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let to = saved.location.expect("redirect");
    assert!(to.contains("done=live"), "{to}");
    assert!(b.get(&to).await.body.contains("ya está en uso"));
    assert!(!read(&dir, GREETING).contains('\r'), "files keep LF line ends");
    assert!(
        greeting(&state, "e2").await.contains(NEW_GREETING),
        "live without a restart"
    );
    assert_eq!(state.reloader.last().trigger, "editor");

    // A typo in a flow: 422, every diagnostic with file:line:column, nothing written, the
    // last good bot still serving.
    let flow = "flows/thanks.yaml";
    let page = b.get(&format!("/console/editor/file?path={flow}")).await;
    let before = read(&dir, flow);
    let broken = before.replace("end: true", "next: nowhere");
    let refused = b
        .post(
            "/console/editor/file",
            &[
                ("csrf", &page.csrf()),
                ("path", flow),
                ("base", &field(&page.body, "base")),
                ("content", &broken),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("no se guardó nada"), "{}", refused.body);
    assert!(
        shown(&refused.body).contains("flows/thanks.yaml:11:"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Cómo arreglarlo"), "the help: {}", refused.body);
    assert_eq!(read(&dir, flow), before);
    assert!(greeting(&state, "e3").await.contains(NEW_GREETING));
}

#[tokio::test]
async fn paths_outside_the_clinics_files_are_refused_with_4xx() {
    let (state, _dir) = editable().await;
    let b = admin(&state).await;
    for (path, status) in [
        ("../Cargo.toml", StatusCode::BAD_REQUEST),
        ("flows/../../etc/passwd", StatusCode::BAD_REQUEST),
        ("%2Fetc%2Fpasswd", StatusCode::BAD_REQUEST),
        ("src/main.rs", StatusCode::BAD_REQUEST),
        ("flows/clinic.j2", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
        ("flows/nope.yaml", StatusCode::NOT_FOUND),
    ] {
        let page = b.get(&format!("/console/editor/file?path={path}")).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        let history = b.get(&format!("/console/editor/history?path={path}")).await;
        assert_eq!(history.status, status, "history of {path}");
    }
    let csrf = b.get("/console/editor").await.csrf();
    let post = b
        .post(
            "/console/editor/file",
            &[
                ("csrf", &csrf),
                ("path", "../x.yaml"),
                ("base", ""),
                ("content", "x"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(post.status, StatusCode::BAD_REQUEST);
    let rollback = b
        .post(
            "/console/editor/rollback",
            &[("csrf", &csrf), ("path", GREETING), ("version", "99"), ("base", "")],
        )
        .await;
    assert_eq!(rollback.status, StatusCode::NOT_FOUND, "no such version");
}

#[tokio::test]
async fn receptionists_get_403_on_every_editor_route() {
    let (state, dir) = editable().await;
    let ana = Browser::new(state.clone());
    ana.login("ana", PASSWORD).await;
    let csrf = ana.get("/console/inbox").await.csrf();
    for path in [
        "/console/editor".to_string(),
        format!("/console/editor/file?path={GREETING}"),
        format!("/console/editor/history?path={GREETING}"),
    ] {
        assert_eq!(ana.get(&path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let before = read(&dir, GREETING);
    let save = ana
        .post(
            "/console/editor/file",
            &[
                ("csrf", &csrf),
                ("path", GREETING),
                ("base", ""),
                ("content", "x"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(save.status, StatusCode::FORBIDDEN);
    let rollback = ana
        .post(
            "/console/editor/rollback",
            &[("csrf", &csrf), ("path", GREETING), ("version", "1"), ("base", "")],
        )
        .await;
    assert_eq!(rollback.status, StatusCode::FORBIDDEN);
    assert_eq!(read(&dir, GREETING), before);
}

#[tokio::test]
async fn a_save_without_the_csrf_token_or_over_a_newer_version_is_refused() {
    let (state, dir) = editable().await;
    let b = admin(&state).await;
    let first = b.get(&format!("/console/editor/file?path={GREETING}")).await;
    let original = read(&dir, GREETING);
    let base = field(&first.body, "base");
    let edit = |text: &str| original.replace("¿en qué puedo ayudarlo?", text);

    let forged = b
        .post(
            "/console/editor/file",
            &[
                ("csrf", "forged"),
                ("path", GREETING),
                ("base", &base),
                ("content", &edit("x")),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(read(&dir, GREETING), original);

    // Two admins opened the same version; the first saves, the second is refused.
    let other = admin(&state).await;
    let page = other.get(&format!("/console/editor/file?path={GREETING}")).await;
    let saved = other
        .post(
            "/console/editor/file",
            &[
                ("csrf", &page.csrf()),
                ("path", GREETING),
                ("base", &field(&page.body, "base")),
                ("content", &edit("¿qué necesita?")),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stale = b
        .post(
            "/console/editor/file",
            &[
                ("csrf", &first.csrf()),
                ("path", GREETING),
                ("base", &base),
                ("content", &edit("¡hola!")),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(stale.body.contains("Alguien guardó este archivo"), "{}", stale.body);
    assert!(stale.body.contains("¡hola!"), "the refused text is still on the page");
    assert!(read(&dir, GREETING).contains("¿qué necesita?"), "the first save stands");
}

#[tokio::test]
async fn a_rollback_is_a_new_version_and_one_that_no_longer_compiles_is_refused() {
    let (state, dir) = editable().await;
    let b = admin(&state).await;
    let save = |path: &'static str, from: &'static str, to: &'static str| {
        let b = &b;
        let dir = &dir;
        async move {
            let page = b.get(&format!("/console/editor/file?path={path}")).await;
            let content = read(dir, path).replacen(from, to, 1);
            assert_ne!(content, read(dir, path), "{from} is in {path}");
            let r = b
                .post(
                    "/console/editor/file",
                    &[
                        ("csrf", &page.csrf()),
                        ("path", path),
                        ("base", &field(&page.body, "base")),
                        ("content", &content),
                        ("action", "save"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        }
    };
    save(GREETING, "¿en qué puedo ayudarlo?", NEW_GREETING).await;
    assert!(greeting(&state, "r1").await.contains(NEW_GREETING));

    let history = b.get(&format!("/console/editor/history?path={GREETING}")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(history.body.contains("encontrada en el disco"), "{}", history.body);
    let diff = b.get(&format!("/console/editor/history?path={GREETING}&v=1")).await;
    assert!(diff.body.contains("Líneas agregadas: 1"), "{}", diff.body);
    assert!(diff.body.contains(NEW_GREETING) && diff.body.contains("¿en qué puedo ayudarlo?"));
    assert!(diff.body.contains("@@ -"), "hunk headers");
    let rolled = b
        .post(
            "/console/editor/rollback",
            &[
                ("csrf", &history.csrf()),
                ("path", GREETING),
                ("version", "1"),
                ("base", &field(&history.body, "base")),
            ],
        )
        .await;
    assert_eq!(rolled.status, StatusCode::SEE_OTHER, "{}", rolled.body);
    assert!(greeting(&state, "r2").await.contains("¿en qué puedo ayudarlo?"));
    let versions = state.service.store.file_versions(GREETING, 10).await.expect("versions");
    let summary: Vec<_> = versions
        .iter()
        .map(|v| (v.n, v.kind, v.author.as_deref(), v.rollback_of))
        .collect();
    assert_eq!(
        summary,
        [
            (3, VersionKind::Rollback, Some("root"), Some(1)),
            (2, VersionKind::Edit, Some("root"), None),
            (1, VersionKind::Found, None, None),
        ]
    );
    let page = b
        .get(&format!("/console/editor/history?path={GREETING}&done=rolled_back"))
        .await;
    assert!(page.body.contains("vuelta a la v1 por root"), "{}", page.body);

    // A new intent, and a flow that uses it; rolling the intents back would strand the flow.
    save("flows/intents.yaml", "  thanks:\n", "  praise:\n    description: The patient praises the clinic.\n    examples:\n      es: [\"excelente atención\"]\n      en: [\"great service\"]\n\n  thanks:\n").await;
    save("flows/thanks.yaml", "trigger: [thanks]", "trigger: [thanks, praise]").await;
    let history = b.get("/console/editor/history?path=flows/intents.yaml").await;
    let before = read(&dir, "flows/intents.yaml");
    let refused = b
        .post(
            "/console/editor/rollback",
            &[
                ("csrf", &history.csrf()),
                ("path", "flows/intents.yaml"),
                ("version", "1"),
                ("base", &field(&history.body, "base")),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("ya no compila"), "{}", refused.body);
    assert!(
        shown(&refused.body).contains("flows/thanks.yaml:4:"),
        "{}",
        refused.body
    );
    assert_eq!(read(&dir, "flows/intents.yaml"), before);
    assert_eq!(
        state
            .service
            .store
            .file_versions("flows/intents.yaml", 10)
            .await
            .expect("versions")
            .len(),
        2,
        "a refused rollback records nothing"
    );
}
