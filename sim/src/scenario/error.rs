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
    /// An [`ScenarioError::Invalid`] for the byte range `span` of the text
    /// `lines` indexes. Only the start of the span matters; a span past the
    /// end of the text points just after its last character.
    pub(crate) fn invalid(
        origin: &str,
        lines: &Lines<'_>,
        span: Range<usize>,
        message: String,
    ) -> ScenarioError {
        let location = lines.locate(span.start);
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

/// Where each line of a text starts, found once, so that locating an
/// offset is a binary search rather than a count from the start of the
/// file. The loader locates every fault (its `line`), so counting from the
/// start each time made loading quadratic in the number of faults.
pub(crate) struct Lines<'a> {
    source: &'a str,
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    /// Index the lines of `source`: one pass over its bytes.
    pub(crate) fn new(source: &'a str) -> Lines<'a> {
        let starts = std::iter::once(0)
            .chain(source.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1));
        Lines { source, starts: starts.collect() }
    }

    /// `offset` clamped into the text and moved back to a char boundary.
    fn clamp(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.source.len());
        // Terminates: offset 0 is always a char boundary.
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    /// Index into `starts` of the line holding the (clamped) `offset`.
    fn index(&self, offset: usize) -> usize {
        // `starts[0]` is 0 <= offset, so at least one start is <= offset.
        self.starts.partition_point(|&start| start <= offset) - 1
    }

    /// The 1-based line of `offset`, in O(log lines).
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.index(self.clamp(offset)) + 1
    }

    /// Locate `offset`. An offset past the end is clamped to the end; one
    /// inside a multi-byte character is moved to its start. Costs O(log
    /// lines) plus the length of the line.
    pub(crate) fn locate(&self, offset: usize) -> Location<'a> {
        let offset = self.clamp(offset);
        let index = self.index(offset);
        let line_start = self.starts[index];
        let column = self.source[line_start..offset].chars().count() + 1;
        // The next start is just after this line's `\n`.
        let line_end = self.starts.get(index + 1).map_or(self.source.len(), |&next| next - 1);
        let raw = &self.source[line_start..line_end];
        let line_text = raw.strip_suffix('\r').unwrap_or(raw);
        Location { line: index + 1, column, line_text }
    }
}

/// Most characters of the source line shown under a diagnostic. A longer
/// line (a generated file may hold megabytes on one line) is cut to this
/// many around the column, with `…` where text was left out.
pub(crate) const EXCERPT_CHARS: usize = 120;

/// The two lines under a diagnostic: the source line (or the part of it
/// around the column) and a caret under the offending character.
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
        let chars = self.text.chars().count();
        // 0-based character index of the caret; it may be one or more past
        // the end of the text (an error at the end of a line).
        let at = self.column.saturating_sub(1);
        // The window of characters shown: all of a short line; of a long
        // one, EXCERPT_CHARS centred on the caret, moved left at the end.
        let (start, end) = if chars <= EXCERPT_CHARS {
            (0, chars)
        } else {
            let start = at.saturating_sub(EXCERPT_CHARS / 2).min(chars - EXCERPT_CHARS);
            (start, start + EXCERPT_CHARS)
        };
        let window = || self.text.chars().skip(start).take(end - start);
        // Control characters would garble a terminal; tabs are kept (and
        // copied into the caret line) so the caret stays aligned.
        let shown: String =
            window().map(|c| if c.is_control() && c != '\t' { '\u{FFFD}' } else { c }).collect();
        let (before, after) = (if start > 0 { "…" } else { "" }, if end < chars { "…" } else { "" });
        let pad: String =
            window().take(at.saturating_sub(start)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        // A caret past the end of the text still goes one place after the
        // last character (or further, as far as the column says).
        let extra = at.saturating_sub(end);
        let lead = if start > 0 { " " } else { "" };
        writeln!(f, "  {number} | {before}{shown}{after}")?;
        write!(f, "  {gutter} | {lead}{pad}{}^", " ".repeat(extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two snippet lines of an error at `column` of a one-line text.
    fn snippet(text: &str, column: usize) -> (String, String) {
        let shown = Snippet::new(1, column, text).to_string();
        let (line, caret) = shown.split_once('\n').expect("two lines");
        (
            line.strip_prefix("  1 | ").expect("gutter").to_string(),
            caret.strip_prefix("    | ").expect("gutter").to_string(),
        )
    }

    /// The character the caret points at, counted in the shown line.
    fn under_caret(line: &str, caret: &str) -> Option<char> {
        line.chars().nth(caret.chars().count() - 1)
    }

    #[test]
    fn a_short_line_is_shown_whole_with_the_caret_under_its_column() {
        let (line, caret) = snippet("target = \"checkot/0\"", 10);
        assert_eq!(line, "target = \"checkot/0\"");
        assert_eq!(caret, "         ^");
    }

    #[test]
    fn a_huge_line_is_cut_around_the_column_and_the_caret_stays_on_its_character() {
        // 5 MB on one line, with a marker character far inside it.
        let mut text = "a".repeat(5_000_000);
        text.replace_range(3_000_000..3_000_001, "X");
        let (line, caret) = snippet(&text, 3_000_001);
        assert!(line.chars().count() <= EXCERPT_CHARS + 2, "shown {} chars", line.chars().count());
        assert!(caret.chars().count() <= EXCERPT_CHARS + 2);
        assert!(line.starts_with('…') && line.ends_with('…'), "{line}");
        assert_eq!(under_caret(&line, &caret), Some('X'));
    }

    #[test]
    fn a_huge_line_cut_near_its_start_or_end_keeps_the_caret_right() {
        let text: String = (0..1_000_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        // Near the start: nothing cut before, so no leading mark.
        let (line, caret) = snippet(&text, 5);
        assert!(!line.starts_with('…') && line.ends_with('…'), "{line}");
        assert_eq!(under_caret(&line, &caret), Some('e'));
        // The last character.
        let (line, caret) = snippet(&text, 1_000_000);
        assert!(line.starts_with('…') && !line.ends_with('…'), "{line}");
        assert_eq!(under_caret(&line, &caret), text.chars().last());
        // Just past the end: the caret one place after the last character.
        let (line, caret) = snippet(&text, 1_000_001);
        assert!(line.chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(caret.chars().count(), line.chars().count() + 1);
    }

    #[test]
    fn lines_locate_offsets_like_counting_from_the_start() {
        let source = "a = 1\r\n\nb = \"é\"\nlast";
        let lines = Lines::new(source);
        let cases = [
            (0, 1, 1, "a = 1"),
            (4, 1, 5, "a = 1"),
            (7, 2, 1, ""),
            (12, 3, 5, "b = \"é\""),
            (14, 3, 6, "b = \"é\""),
            (17, 4, 1, "last"),
            (99, 4, 5, "last"),
        ];
        for (offset, line, column, text) in cases {
            let at = lines.locate(offset);
            assert_eq!((at.line, at.column, at.line_text), (line, column, text), "offset {offset}");
            assert_eq!(lines.line(offset), line);
        }
    }
}
