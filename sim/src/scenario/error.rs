//! The one error type of scenario loading.
//!
//! Every problem with a file's contents, from a TOML syntax error to a
//! target naming an unknown service, becomes [`ScenarioError::Invalid`] with
//! the 1-based line and column of the offending text, so the user goes
//! straight to it. Its `Display` looks like a compiler diagnostic:
//!
//! ```text
//! scenarios/crash.toml:14:10: unknown service `checkot` in target `checkot/0`; known services: `checkout`
//!   14 | target = "checkot/0"
//!      |          ^
//! ```

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read (missing, unreadable, or not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid scenario: bad TOML, a value of the wrong type,
    /// an unknown key, or a broken rule of the format.
    #[error("{origin}:{line}:{column}: {message}\n{}", Snippet::new(*line, *column, line_text))]
    Invalid {
        /// Where the text came from (usually the file name).
        origin: String,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text, counted in characters.
        column: usize,
        /// What is wrong, and where it helps, what would be right.
        message: String,
        /// The whole source line, without its line ending.
        line_text: String,
    },
}

impl ScenarioError {
    /// An [`ScenarioError::Invalid`] for the byte range `span` of `source`.
    /// Only the start of the span matters; a span past the end of `source`
    /// points just after its last character.
    pub(crate) fn invalid(origin: &str, source: &str, span: Range<usize>, message: String) -> ScenarioError {
        let location = Location::of(source, span.start);
        ScenarioError::Invalid {
            origin: origin.to_string(),
            line: location.line,
            column: location.column,
            message,
            line_text: location.line_text.to_string(),
        }
    }
}

/// Line, column and text of a byte offset.
pub(crate) struct Location<'a> {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column, in characters.
    pub(crate) column: usize,
    /// The line, without `\n` or `\r\n`.
    pub(crate) line_text: &'a str,
}

impl<'a> Location<'a> {
    /// Locate `offset` in `source`. An offset past the end is clamped to the
    /// end; one inside a multi-byte character is moved to its start.
    pub(crate) fn of(source: &'a str, offset: usize) -> Location<'a> {
        let mut offset = offset.min(source.len());
        // Terminates: offset 0 is always a char boundary.
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let column = source[line_start..offset].chars().count() + 1;
        let line_end = source[offset..].find('\n').map_or(source.len(), |i| offset + i);
        let raw = &source[line_start..line_end];
        let line_text = raw.strip_suffix('\r').unwrap_or(raw);
        Location { line, column, line_text }
    }
}

/// The two lines under a diagnostic: the source line and a caret.
struct Snippet<'a> {
    line: usize,
    column: usize,
    text: &'a str,
}

impl<'a> Snippet<'a> {
    fn new(line: usize, column: usize, text: &'a str) -> Snippet<'a> {
        Snippet { line, column, text }
    }
}

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        // Control characters would garble a terminal; tabs are kept (and
        // copied into the caret line) so the caret stays aligned.
        let shown: String =
            self.text.chars().map(|c| if c.is_control() && c != '\t' { '\u{FFFD}' } else { c }).collect();
        let pad: String = self
            .text
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        // A column past the end of the text (an error at the end of a line)
        // still gets its caret one place after the last character.
        let extra = self.column.saturating_sub(1).saturating_sub(self.text.chars().count());
        writeln!(f, "  {number} | {shown}")?;
        write!(f, "  {gutter} | {pad}{}^", " ".repeat(extra))
    }
}
