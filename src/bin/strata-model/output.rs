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
}

impl Ui {
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
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::Message(format!("cannot write to stdout: {e}"), code::FAILURE)),
    }
}

/// A table: columns padded to their widest cell; `right` columns align right. The last
/// column is not padded (it may be painted).
pub struct Table<const N: usize> {
    header: [&'static str; N],
    right: [bool; N],
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    /// An empty table.
    pub fn new(header: [&'static str; N], right: [bool; N]) -> Self {
        Self { header, right, rows: Vec::new() }
    }

    /// Adds a row.
    pub fn push(&mut self, row: [String; N]) {
        self.rows.push(row);
    }

    /// The lines, indented by two spaces; `paint_last` colors each row's last cell.
    pub fn render(&self, paint_last: impl Fn(usize, &str) -> String) -> String {
        let mut widths = self.header.map(str::len);
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; N], last: String| {
            let mut s = String::from(" ");
            for (i, cell) in cells.iter().enumerate().take(N - 1) {
                let w = widths[i];
                s.push_str(&if self.right[i] { format!(" {cell:>w$} ") } else { format!(" {cell:<w$} ") });
            }
            s.push(' ');
            s.push_str(&last);
            s.push('\n');
            s
        };
        let mut out = line(self.header, self.header[N - 1].to_string());
        for (i, row) in self.rows.iter().enumerate() {
            out.push_str(&line(std::array::from_fn(|k| row[k].as_str()), paint_last(i, &row[N - 1])));
        }
        out
    }
}
