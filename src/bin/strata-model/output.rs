//! How results reach the user: text or one JSON document on stdout, color when wanted, and
//! aligned tables. A closed pipe (`| head`) ends the program quietly.

use std::io::Write;

use crate::exit::{code, Failure};

/// How output looks.
pub struct Ui {
    /// One JSON document on stdout instead of text.
    pub json: bool,
    /// Color on stdout.
    pub color_out: bool,
    /// Color on stderr.
    pub color_err: bool,
    /// Nothing on stderr but errors.
    pub quiet: bool,
}

impl Ui {
    /// Says `text` on stderr as a note, unless quiet.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("strata-model: note: {text}");
        }
    }

    /// Notes that the name the user typed is stored in lower case (names are
    /// case-insensitive), when it was not lower case already.
    pub fn note_lowercased(&self, what: &str, given: &str, stored: &str) {
        if given.trim() != stored {
            self.note(&format!(
                "{what} names are case-insensitive and kept in lower case: `{}` is `{stored}`",
                given.trim()
            ));
        }
    }

    /// `text` in color `code` (an SGR number) when stdout takes color.
    pub fn paint(&self, text: &str, code: &str) -> String {
        if self.color_out {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

static JSON_EMITTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a JSON document was written to stdout.
pub fn json_emitted() -> bool {
    JSON_EMITTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes one JSON document to stdout.
pub fn emit_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    JSON_EMITTED.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| Failure::Message(e.to_string(), code::FAILURE))?;
    text.push('\n');
    emit(&text)
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly.
pub fn emit(text: impl AsRef<[u8]>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::Message(format!("cannot write to stdout: {e}"), code::FAILURE)),
    }
}

/// Text for stdout in which paths keep their exact bytes: on Unix a path that is not UTF-8
/// is written as it is, so that `MODEL=$(strata-model path NAME)` names the file.
#[derive(Default)]
pub struct Out(Vec<u8>);

impl Out {
    /// Text that starts with `s`.
    pub fn new(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }

    /// Appends text.
    pub fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// Appends a path, its exact bytes on Unix.
    pub fn push_path(&mut self, path: &std::path::Path) {
        #[cfg(unix)]
        self.0.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
        #[cfg(not(unix))]
        self.push_str(&path.display().to_string());
    }

    /// `path` and a new line.
    pub fn line(path: &std::path::Path) -> Self {
        let mut out = Self::default();
        out.push_path(path);
        out.push_str("\n");
        out
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for Out {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A table: columns padded to their widest cell; `right` columns align right. The last
/// column is not padded (no trailing spaces).
pub struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns: (header, aligned right).
    pub fn new(columns: &[(&'static str, bool)]) -> Self {
        Self {
            header: columns.iter().map(|c| c.0).collect(),
            right: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell a column).
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    /// The lines, indented by two spaces; `paint(row, column, cell)` may color a padded cell.
    pub fn render(&self, paint: impl Fn(usize, usize, String) -> String) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>, paint: &dyn Fn(usize, String) -> String| {
            let mut s = String::from(" ");
            for (i, cell) in cells.into_iter().enumerate() {
                let w = widths[i];
                let padded = match (i + 1 == n, self.right[i]) {
                    (true, _) => cell.to_string(),
                    (false, true) => format!("{cell:>w$}"),
                    (false, false) => format!("{cell:<w$}"),
                };
                s.push(' ');
                s.push_str(&paint(i, padded));
                if i + 1 < n {
                    s.push(' ');
                }
            }
            s.truncate(s.trim_end().len());
            s.push('\n');
            s
        };
        let mut out = line(self.header.clone(), &|_, cell| cell);
        for (r, row) in self.rows.iter().enumerate() {
            out.push_str(&line(row.iter().map(String::as_str).collect(), &|c, cell| paint(r, c, cell)));
        }
        out
    }
}
