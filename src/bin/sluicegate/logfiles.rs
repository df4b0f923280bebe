//! A tracing layer that writes each event to the file its span asks for: the harness's run span
//! carries `log_file = <run>/harness.log`, each in-process node's span `log_file =
//! <run>/node-logs/<node>.log`. The innermost span with a `log_file` wins, so a node's events go
//! to its own file and everything else of the run to `harness.log`. The library only names the
//! files; writing them is the binary's choice of subscriber.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The field naming a span's log file.
const LOG_FILE: &str = "log_file";

/// Writes events to their span's `log_file`, opening each file once (appending).
pub struct RunFiles {
    started: Instant,
    files: Mutex<HashMap<PathBuf, File>>,
}

impl RunFiles {
    /// A layer with no files open yet; times in the files count from now.
    pub fn new() -> Self {
        RunFiles {
            started: Instant::now(),
            files: Mutex::new(HashMap::new()),
        }
    }

    fn append(&self, path: &PathBuf, line: &str) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if !files.contains_key(path) {
            match OpenOptions::new().create(true).append(true).open(path) {
                Ok(file) => {
                    files.insert(path.clone(), file);
                }
                // A log layer cannot report its own failure through tracing; stderr still has
                // every event.
                Err(_) => return,
            }
        }
        if let Some(file) = files.get_mut(path)
            && file.write_all(line.as_bytes()).is_err()
        {
            files.remove(path);
        }
    }
}

/// Which file a span's events go to.
struct LogFile(PathBuf);

/// Finds the `log_file` field among a span's fields.
#[derive(Default)]
struct FindLogFile(Option<PathBuf>);

impl Visit for FindLogFile {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == LOG_FILE {
            self.0 = Some(PathBuf::from(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == LOG_FILE {
            // `%path.display()` arrives as Display-through-Debug, without quotes.
            self.0 = Some(PathBuf::from(format!("{value:?}")));
        }
    }
}

/// An event's message, then its other fields as ` key=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _infallible = write!(self.message, "{value:?}");
        } else {
            let _infallible = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _infallible = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S> Layer<S> for RunFiles
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut found = FindLogFile::default();
        attrs.record(&mut found);
        if let (Some(path), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().insert(LogFile(path));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(path) = scope.into_iter().find_map(|span| {
            span.extensions()
                .get::<LogFile>()
                .map(|file| file.0.clone())
        }) else {
            return;
        };
        let mut line = Line::default();
        event.record(&mut line);
        let metadata = event.metadata();
        let text = format!(
            "{:>10.3}s {:>5} {}: {}{}\n",
            self.started.elapsed().as_secs_f64(),
            metadata.level(),
            metadata.target(),
            line.message,
            line.fields
        );
        self.append(&path, &text);
    }
}
