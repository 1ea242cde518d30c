//! Output: aligned tables (coloured headers on a terminal), key/value summaries, JSON for
//! scripts, and error reporting on stderr.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::error::{Error, Result};

/// When to colour output (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    fn enabled(self, stream_is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// How a command prints its results.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of tables.
    pub json: bool,
    /// Colour stdout.
    pub color: bool,
    /// Colour stderr.
    pub color_err: bool,
    /// Whether stderr is a terminal (live progress lines are redrawn in place there).
    pub stderr_tty: bool,
}

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

impl Output {
    /// Output settings for the given flags and the actual stdout/stderr.
    pub fn new(json: bool, color: ColorChoice) -> Output {
        let stderr_tty = std::io::stderr().is_terminal();
        Output {
            json,
            color: color.enabled(std::io::stdout().is_terminal()),
            color_err: color.enabled(stderr_tty),
            stderr_tty,
        }
    }

    fn paint(&self, on: bool, style: &str, text: &str) -> String {
        if on {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// Text in bold when colouring stdout.
    pub fn bold(&self, text: &str) -> String {
        self.paint(self.color, BOLD, text)
    }

    /// Text in green when colouring stdout (success).
    pub fn green(&self, text: &str) -> String {
        self.paint(self.color, GREEN, text)
    }

    /// Text in red when colouring stdout (failure).
    pub fn red(&self, text: &str) -> String {
        self.paint(self.color, RED, text)
    }

    /// Text dimmed when colouring stdout (secondary information).
    pub fn dim(&self, text: &str) -> String {
        self.paint(self.color, DIM, text)
    }

    /// Prints a JSON document (pretty on a terminal, one line otherwise).
    pub fn print_json(&self, value: &Value) -> Result<()> {
        let text = if self.color {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        }
        .map_err(|e| Error::io("encode JSON", e.into()))?;
        write_stdout(format!("{text}\n").as_bytes())
    }

    /// Prints a table with a header row; columns are aligned, the header bold and cyan on a
    /// terminal. An empty table prints `empty` instead (dimmed).
    pub fn print_table(&self, headers: &[&str], rows: &[Vec<String>], empty: &str) -> Result<()> {
        if rows.is_empty() {
            return write_stdout(format!("{}\n", self.dim(empty)).as_bytes());
        }
        let text = render_table(headers, rows, self.color);
        write_stdout(text.as_bytes())
    }

    /// Prints `key: value` lines with the keys aligned.
    pub fn print_fields(&self, fields: &[(&str, String)]) -> Result<()> {
        let width = fields
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut text = String::new();
        for (k, v) in fields {
            let pad = width - k.chars().count();
            text.push_str(&format!(
                "{}{} {v}\n",
                self.bold(&format!("{k}:")),
                " ".repeat(pad)
            ));
        }
        write_stdout(text.as_bytes())
    }

    /// Prints a section title (bold, preceded by an empty line unless `first`).
    pub fn print_section(&self, title: &str, first: bool) -> Result<()> {
        let sep = if first { "" } else { "\n" };
        write_stdout(format!("{sep}{}\n", self.bold(title)).as_bytes())
    }

    /// Prints a warning on stderr.
    pub fn warn(&self, message: &str) {
        eprintln!(
            "{} {message}",
            self.paint(self.color_err, YELLOW, "warning:")
        );
    }

    /// Prints an informational line on stderr (progress, summaries of side effects).
    pub fn note(&self, message: &str) {
        eprintln!("{message}");
    }

    /// Reports an error on stderr: `error: ...` (red on a terminal), or a JSON object with
    /// `--json`.
    pub fn report_error(&self, e: &Error) {
        if self.json {
            let v = serde_json::json!({ "error": e.to_string(), "kind": e.kind() });
            eprintln!("{v}");
            return;
        }
        let text = e.to_string();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        eprintln!(
            "{} {first}",
            self.paint(self.color_err, &format!("{BOLD}{RED}"), "error:")
        );
        for line in lines {
            match line.strip_prefix("hint: ") {
                Some(hint) => eprintln!("{} {hint}", self.paint(self.color_err, CYAN, "hint:")),
                None => eprintln!("{line}"),
            }
        }
    }
}

/// Writes bytes to stdout; a closed pipe is reported as an [`Error::Io`] that
/// [`Error::is_broken_pipe`] recognises.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("write to stdout", e))
}

/// Renders an aligned table: columns separated by two spaces, no trailing spaces.
pub fn render_table(headers: &[&str], rows: &[Vec<String>], color: bool) -> String {
    let cols = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>, header: bool| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let last = i + 1 == cells.len();
            let pad = if last {
                0
            } else {
                widths[i].saturating_sub(cell.chars().count()) + 2
            };
            if header && color {
                l.push_str(&format!("{BOLD}{CYAN}{cell}{RESET}"));
            } else {
                l.push_str(cell);
            }
            l.push_str(&" ".repeat(pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), true);
    for row in rows {
        let mut cells: Vec<&str> = row.iter().map(String::as_str).take(cols).collect();
        cells.resize(cols, "");
        line(cells, false);
    }
    out
}

/// A table cell for a number that may be unknown: the number, or `-`.
pub fn dash(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Joins a list of broker ids as `1,2,3`.
pub fn id_list(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let rows = vec![
            vec!["orders".to_string(), "3".to_string()],
            vec!["a".to_string(), "12".to_string()],
        ];
        assert_eq!(
            render_table(&["NAME", "PARTITIONS"], &rows, false),
            "NAME    PARTITIONS\norders  3\na       12\n"
        );
    }

    #[test]
    fn short_rows_are_padded_and_long_rows_cut() {
        let rows = vec![
            vec!["x".to_string()],
            vec!["y".into(), "1".into(), "extra".into()],
        ];
        assert_eq!(render_table(&["A", "B"], &rows, false), "A  B\nx\ny  1\n");
    }

    #[test]
    fn coloured_headers_keep_the_alignment() {
        let rows = vec![vec!["abc".to_string(), "1".to_string()]];
        let t = render_table(&["A", "B"], &rows, true);
        assert!(t.starts_with(&format!("{BOLD}{CYAN}A{RESET}    {BOLD}{CYAN}B{RESET}\n")));
        assert!(t.ends_with("abc  1\n"));
    }

    #[test]
    fn color_choice_respects_the_terminal() {
        assert!(ColorChoice::Always.enabled(false));
        assert!(!ColorChoice::Never.enabled(true));
        assert!(!ColorChoice::Auto.enabled(false));
    }
}
