//! Lays rows out in aligned columns for a terminal, escaping what a caller could have put in a
//! record (control characters, terminal escape sequences) and cutting very long cells.

use std::fmt;

/// The widest a cell is shown, in characters; longer cells end in `…`.
const MAX_CELL_CHARS: usize = 80;

/// Rows under a header, printed with columns aligned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column), made safe to print.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| safe_cell(c)).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// A cell with control characters and bidirectional overrides escaped (`\n`, `\u{1b}`,
/// `\u{202e}`) and cut to [`MAX_CELL_CHARS`].
fn safe_cell(text: &str) -> String {
    let mut safe = String::new();
    for c in text.chars() {
        if c.is_control() || reorders_text(c) {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    if safe.chars().count() > MAX_CELL_CHARS {
        safe = safe.chars().take(MAX_CELL_CHARS - 1).collect();
        safe.push('…');
    }
    safe
}

/// Whether a character changes the order or visibility of the text around it (bidirectional
/// embeddings, overrides and isolates, zero-width marks): a cell could otherwise show other
/// text than it holds.
fn reorders_text(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
