//! Which clinic the current task works for: every metric recorded inside gets a `clinic`
//! label and every log line a `clinic` field, without each call site passing the slug.
//!
//! A request enters the scope in the server's dispatch; a clinic's workers run inside it from
//! their start; tasks spawned for either go through [`spawn`], which carries the scope over
//! (a plain `tokio::spawn` would lose it: task-locals do not cross tasks).

use std::future::Future;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use tracing::Instrument;

use super::Slug;

tokio::task_local! {
    static CLINIC: Slug;
}

/// The clinic of the running task, if it runs inside one's scope.
pub fn current() -> Option<Slug> {
    CLINIC.try_with(Slug::clone).ok()
}

/// Runs `fut` as work of `clinic`: its metrics labelled, its logs in a `clinic` span.
pub fn scope<F: Future>(clinic: Slug, fut: F) -> impl Future<Output = F::Output> {
    // At error level so that it is kept whatever the log filter (the default is `warn`):
    // a span's level only decides whether it is recorded, and every line must name its clinic.
    let span = tracing::error_span!("clinic", clinic = %clinic);
    CLINIC.scope(clinic, fut.instrument(span))
}

/// Runs `f` (which spawns a clinic's workers through [`spawn`]) inside `clinic`'s scope.
pub fn sync_scope<R>(clinic: Slug, f: impl FnOnce() -> R) -> R {
    let _span = tracing::error_span!("clinic", clinic = %clinic).entered();
    CLINIC.sync_scope(clinic, f)
}

/// `tokio::spawn` that keeps the current clinic's scope (none if there is none).
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match current() {
        Some(clinic) => tokio::spawn(scope(clinic, fut)),
        None => tokio::spawn(fut),
    }
}

/// A recorder that adds `clinic="<slug>"` to every metric recorded inside a clinic's scope,
/// then hands it to `inner` (Prometheus). A metric that names its clinic already keeps its own.
pub struct ClinicLabels<R>(pub R);

impl<R> ClinicLabels<R> {
    fn key(key: &Key) -> Key {
        match current() {
            Some(clinic) if !key.labels().any(|l| l.key() == "clinic") => {
                key.with_extra_labels(vec![Label::new("clinic", clinic.as_str().to_string())])
            }
            _ => key.clone(),
        }
    }
}

impl<R: Recorder> Recorder for ClinicLabels<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description)
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description)
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description)
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(&Self::key(key), metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(&Self::key(key), metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(&Self::key(key), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scope_reaches_spawned_tasks_and_labels_metrics() {
        let clinic = Slug::parse("harbor-dental").unwrap();
        let seen = scope(clinic.clone(), async { spawn(async { current() }).await.unwrap() }).await;
        assert_eq!(seen, Some(clinic.clone()));
        assert_eq!(spawn(async { current() }).await.unwrap(), None, "no scope outside");

        let key = Key::from_name("clinicflow_turns_total");
        let labelled = scope(clinic, async { ClinicLabels::<()>::key(&key) }).await;
        let labels: Vec<_> = labelled
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        assert_eq!(labels, vec![("clinic".to_string(), "harbor-dental".to_string())]);
        assert_eq!(ClinicLabels::<()>::key(&key).labels().count(), 0);

        let own = Key::from_parts("clinicflow_llm_calls_total", vec![Label::new("clinic", "x")]);
        let kept = scope(Slug::main(), async { ClinicLabels::<()>::key(&own) }).await;
        assert_eq!(kept.labels().count(), 1, "a metric naming its clinic keeps that label");
    }
}
