//! Answer extraction: finding the answer inside a model's raw response text.
//!
//! This runs as (part of) a reward function, at high rates, on untrusted text, so it is
//! total and cheap:
//!
//! * **Complexity.** Every rule is one forward scan over the bytes with O(1) work per byte
//!   (amortised); the `Auto` mode runs at most four such scans, so the whole call is
//!   O(n) time in the input length. Extra memory is O(1) except the bracket stack of the
//!   JSON rule, which is capped at [`MAX_JSON_DEPTH`] frames. Inputs longer than
//!   [`MAX_RESPONSE_BYTES`] are rejected before any scanning.
//! * **Safety.** No regexes, no recursion, no panics: decisions are made on ASCII bytes
//!   only, and slices are cut only next to ASCII bytes (or at the ends), which are always
//!   char boundaries in UTF-8, so any `&str` (CRLF, non-ASCII, control characters) is fine.
//!
//! ## Rules
//!
//! * **Tag**: the *last* opening `<answer>` tag (name case-insensitive, ASCII whitespace
//!   allowed before the `>`), up to the first `</answer>` after it, or to the end of the
//!   text if it is not closed. The content is trimmed. If the trimmed content starts with a
//!   fence (```` ``` ````) and contains a complete fenced block, that block's content is
//!   taken instead (models often wrap the tagged answer in a code block).
//! * **Fence**: the content of the *last complete* fenced block: a run of three or more
//!   backticks opens a block, and the next run at least as long closes it (shorter runs
//!   are content, so ```` ```` ```` fences may contain ```` ``` ````). If the rest of the
//!   opening line is empty or a single info word starting with a letter (`json`,
//!   `python`, `c++`), the content starts on the next line; otherwise (```` ```[1, 2]``` ````)
//!   right after the backticks. A final unclosed fence is ignored. Content is trimmed.
//! * **Json**: the last JSON value in the text. First, composite values: one forward scan
//!   tracks bracket depth, JSON string state (only inside brackets; prose quotes outside
//!   brackets are ignored) and a JSON grammar state per open bracket, and so knows for
//!   every matched `[...]` / `{...}` span whether it is syntactically valid JSON. The
//!   valid span that *ends last* wins; when both an enclosing span and a span inside it
//!   are valid, the enclosing one ends later, so the top-level value is found. A raw
//!   newline (any control character) inside a string, a mismatched closer or unexpected
//!   prose makes the enclosing span invalid without hiding later spans. If there is no
//!   valid composite, the last JSON scalar token: a number, `true`, `false`, `null`
//!   (delimited by characters other than ASCII letters, digits, `_ + - .`; trailing
//!   sentence periods are dropped, so `42.` gives `42`) or a double-quoted string on one
//!   line with valid escapes.
//! * **Text**: the whole text, trimmed; an error if that is empty.
//! * **Auto**: Tag if the text has an opening answer tag; else Fence if it has a complete
//!   fenced block; else Json if it has a JSON value; else Text.

use std::fmt;
use std::str::FromStr;

/// Responses longer than this (in bytes) are rejected without being scanned.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Brackets nested deeper than this never form an extracted span (serde_json, and so
/// `shape::decode`, cannot parse more than 127 levels either); it bounds the scan's
/// memory.
pub const MAX_JSON_DEPTH: usize = 128;

/// Which rule to apply (or, in [`Extracted::how`], which rule matched).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtractMode {
    Auto,
    Tag,
    Fence,
    Json,
    Text,
}

impl ExtractMode {
    pub fn name(self) -> &'static str {
        match self {
            ExtractMode::Auto => "auto",
            ExtractMode::Tag => "tag",
            ExtractMode::Fence => "fence",
            ExtractMode::Json => "json",
            ExtractMode::Text => "text",
        }
    }
}

impl fmt::Display for ExtractMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExtractMode {
    type Err = String;
    fn from_str(s: &str) -> Result<ExtractMode, String> {
        match s {
            "auto" => Ok(ExtractMode::Auto),
            "tag" => Ok(ExtractMode::Tag),
            "fence" => Ok(ExtractMode::Fence),
            "json" => Ok(ExtractMode::Json),
            "text" => Ok(ExtractMode::Text),
            other => Err(format!(
                "unknown extraction mode `{other}` (expected auto, tag, fence, json or text)"
            )),
        }
    }
}

/// The extracted answer text: a slice of the response, and the rule that found it
/// (never `Auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extracted<'a> {
    pub text: &'a str,
    pub how: ExtractMode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtractError {
    /// The response is longer than [`MAX_RESPONSE_BYTES`].
    TooLarge { len: usize },
    /// The rule of this mode found nothing (for `Text` and `Auto`: the text is blank).
    NotFound { mode: ExtractMode },
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtractError::TooLarge { len } => write!(
                f,
                "the response is {len} bytes, more than the limit of {MAX_RESPONSE_BYTES}"
            ),
            ExtractError::NotFound { mode } => f.write_str(match mode {
                ExtractMode::Tag => "no <answer> tag in the response",
                ExtractMode::Fence => "no complete fenced code block in the response",
                ExtractMode::Json => "no JSON value in the response",
                ExtractMode::Text | ExtractMode::Auto => "the response is empty",
            }),
        }
    }
}

impl std::error::Error for ExtractError {}

/// Extracts the answer from a model response with the given rule (see the module docs).
pub fn extract(text: &str, mode: ExtractMode) -> Result<Extracted<'_>, ExtractError> {
    if text.len() > MAX_RESPONSE_BYTES {
        return Err(ExtractError::TooLarge { len: text.len() });
    }
    let found = |text, how| Ok(Extracted { text, how });
    let missing = |mode| Err(ExtractError::NotFound { mode });
    match mode {
        ExtractMode::Auto => {
            if let Some(t) = tag(text) {
                found(t, ExtractMode::Tag)
            } else if let Some(t) = fence(text) {
                found(t, ExtractMode::Fence)
            } else if let Some(t) = json(text) {
                found(t, ExtractMode::Json)
            } else if let Some(t) = whole(text) {
                found(t, ExtractMode::Text)
            } else {
                missing(ExtractMode::Auto)
            }
        }
        ExtractMode::Tag => tag(text).map_or(missing(mode), |t| found(t, mode)),
        ExtractMode::Fence => fence(text).map_or(missing(mode), |t| found(t, mode)),
        ExtractMode::Json => json(text).map_or(missing(mode), |t| found(t, mode)),
        ExtractMode::Text => whole(text).map_or(missing(mode), |t| found(t, mode)),
    }
}

/// `text[a..b]`, or "" if that is not a valid slice (it always is: every cut is next to
/// an ASCII byte; this keeps the function total regardless).
fn cut(text: &str, a: usize, b: usize) -> &str {
    text.get(a..b).unwrap_or("")
}

fn whole(text: &str) -> Option<&str> {
    let t = text.trim();
    (!t.is_empty()).then_some(t)
}

// ---------------------------------------------------------------------------------------
// Tag rule

/// If an answer tag (`open` = `<answer`, or `</answer` when `closing`) starts at `i`,
/// the index just after its `>`.
fn tag_at(b: &[u8], i: usize, closing: bool) -> Option<usize> {
    let name: &[u8] = if closing { b"</answer" } else { b"<answer" };
    let end = i.checked_add(name.len())?;
    if !b.get(i..end)?.eq_ignore_ascii_case(name) {
        return None;
    }
    let mut j = end;
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    (b.get(j) == Some(&b'>')).then_some(j + 1)
}

fn tag(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    // (content start, content end if a closing tag followed the last opening tag)
    let mut last: Option<(usize, Option<usize>)> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        if let Some(after) = tag_at(b, i, false) {
            last = Some((after, None));
            i = after;
        } else if let Some(after) = tag_at(b, i, true) {
            if let Some((_, close @ None)) = &mut last {
                *close = Some(i);
            }
            i = after;
        } else {
            i += 1;
        }
    }
    let (start, end) = last?;
    let content = cut(text, start, end.unwrap_or(b.len())).trim();
    if content.starts_with("```") {
        if let Some(inner) = fence(content) {
            return Some(inner);
        }
    }
    Some(content)
}

// ---------------------------------------------------------------------------------------
// Fence rule

fn fence(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    // Open fence: (backtick count, index just after the run).
    let mut open: Option<(usize, usize)> = None;
    // Last complete block: (index after the opening run, index of the closing run).
    let mut last: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] == b'`' {
            i += 1;
        }
        let run = i - start;
        if run < 3 {
            continue;
        }
        match open {
            None => open = Some((run, i)),
            Some((n, body)) if run >= n => {
                last = Some((body, start));
                open = None;
            }
            Some(_) => {}
        }
    }
    let (body, close) = last?;
    let inner = cut(text, body, close);
    let content = match inner.find('\n') {
        Some(nl) if is_info_string(inner[..nl].trim()) => &inner[nl + 1..],
        _ => inner,
    };
    Some(content.trim())
}

/// Empty, or one word such as `json`, `python`, `c++`, `objective-c`.
fn is_info_string(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        None => true,
        Some(first) => {
            first.is_ascii_alphabetic()
                && bytes.all(|c| c.is_ascii_alphanumeric() || b"_+-.#".contains(&c))
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON rule

fn json(text: &str) -> Option<&str> {
    if let Some((a, b)) = last_composite(text.as_bytes()) {
        return Some(cut(text, a, b));
    }
    last_scalar(text.as_bytes()).map(|(a, b)| cut(text, a, b))
}

/// Bytes that can make up a bare JSON literal (numbers, `true`, `false`, `null`).
fn is_literal_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.'
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(s: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if s.first() == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == s.len()
}

pub(crate) fn is_json_number_str(s: &str) -> bool {
    is_json_number(s.as_bytes())
}

fn is_json_literal(s: &[u8]) -> bool {
    matches!(s, b"true" | b"false" | b"null") || is_json_number(s)
}

/// Where an open bracket is in the JSON grammar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Just after `[` or `{`: a value (array) / key (object), or the closer.
    First,
    /// After a comma: a value (array) or key (object).
    Item,
    /// Object: after a key, the colon.
    Colon,
    /// Object: after the colon, the value.
    Value,
    /// After an element or member: a comma or the closer.
    Next,
}

struct Frame {
    object: bool,
    start: usize,
    valid: bool,
    expect: Expect,
}

impl Frame {
    /// A value (scalar, string, or nested bracket) arrives in this frame.
    fn value(&mut self) {
        match (self.object, self.expect) {
            (false, Expect::First | Expect::Item) | (true, Expect::Value) => {
                self.expect = Expect::Next
            }
            _ => self.valid = false,
        }
    }

    /// A string arrives: in an object it may be a key.
    fn string(&mut self) {
        match (self.object, self.expect) {
            (true, Expect::First | Expect::Item) => self.expect = Expect::Colon,
            _ => self.value(),
        }
    }

    fn punct(&mut self, c: u8) {
        match (c, self.object, self.expect) {
            (b',', _, Expect::Next) => self.expect = Expect::Item,
            (b':', true, Expect::Colon) => self.expect = Expect::Value,
            _ => self.valid = false,
        }
    }

    fn closes_cleanly(&self) -> bool {
        self.valid && matches!(self.expect, Expect::First | Expect::Next)
    }
}

/// String-scanning state inside brackets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Str {
    Out,
    In,
    /// After a backslash.
    Escape,
    /// Inside `\uXXXX`, with this many hex digits still to come.
    Hex(u8),
}

/// The last matched `[...]`/`{...}` span that is valid JSON, as byte offsets.
fn last_composite(b: &[u8]) -> Option<(usize, usize)> {
    // Live frames, innermost last; at most MAX_JSON_DEPTH of them. Frames pushed out of
    // the bottom (`dead`) can no longer produce a parseable span and are only counted.
    let mut stack: std::collections::VecDeque<Frame> = std::collections::VecDeque::new();
    let mut dead = 0usize;
    let mut string = Str::Out;
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if string != Str::Out {
            let top = stack.back_mut();
            if c < 0x20 {
                // JSON strings cannot contain raw control characters (newlines): this was
                // prose, not a string. Resume outside it.
                if let Some(f) = top {
                    f.valid = false;
                }
                string = Str::Out;
                continue; // re-read the character outside the string
            }
            string = match (string, c) {
                (Str::In, b'"') => Str::Out,
                (Str::In, b'\\') => Str::Escape,
                (Str::In, _) => Str::In,
                (Str::Escape, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Str::In,
                (Str::Escape, b'u') => Str::Hex(4),
                (Str::Hex(n), h) if h.is_ascii_hexdigit() => {
                    if n > 1 {
                        Str::Hex(n - 1)
                    } else {
                        Str::In
                    }
                }
                _ => {
                    // Bad escape: the string goes on, the span is not JSON.
                    if let Some(f) = top {
                        f.valid = false;
                    }
                    if c == b'"' {
                        Str::Out
                    } else {
                        Str::In
                    }
                }
            };
            i += 1;
            continue;
        }
        if stack.is_empty() && dead == 0 {
            // Outside any bracket: only an opener matters.
            if c == b'[' || c == b'{' {
                stack.push_back(Frame {
                    object: c == b'{',
                    start: i,
                    valid: true,
                    expect: Expect::First,
                });
            }
            i += 1;
            continue;
        }
        match c {
            b'[' | b'{' => {
                if let Some(f) = stack.back_mut() {
                    f.value();
                }
                if stack.len() == MAX_JSON_DEPTH {
                    stack.pop_front();
                    dead += 1;
                }
                stack.push_back(Frame {
                    object: c == b'{',
                    start: i,
                    valid: true,
                    expect: Expect::First,
                });
            }
            b']' | b'}' => match stack.pop_back() {
                Some(f) => {
                    let matched = f.object == (c == b'}');
                    let ok = matched && f.closes_cleanly();
                    if ok {
                        last = Some((f.start, i + 1));
                    } else if let Some(parent) = stack.back_mut() {
                        parent.valid = false;
                    }
                }
                // Closing a dead frame: its kind is no longer known, any closer will do.
                None => dead = dead.saturating_sub(1),
            },
            b'"' => {
                if let Some(f) = stack.back_mut() {
                    f.string();
                }
                string = Str::In;
            }
            b',' | b':' => {
                if let Some(f) = stack.back_mut() {
                    f.punct(c);
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            c if is_literal_byte(c) => {
                let start = i;
                while i < b.len() && is_literal_byte(b[i]) {
                    i += 1;
                }
                if let Some(f) = stack.back_mut() {
                    if is_json_literal(&b[start..i]) {
                        f.value();
                    } else {
                        f.valid = false;
                    }
                }
                continue;
            }
            _ => {
                if let Some(f) = stack.back_mut() {
                    f.valid = false;
                }
            }
        }
        i += 1;
    }
    last
}

/// Prose word bytes for the scalar rule: a literal must not touch any of these.
fn is_word_byte(c: u8) -> bool {
    is_literal_byte(c) || c == b'_'
}

/// The last JSON scalar token in prose, as byte offsets.
fn last_scalar(b: &[u8]) -> Option<(usize, usize)> {
    let mut last = None;
    // Quotes before this index cannot open a string: a string attempt from an earlier
    // quote already failed there (which keeps the scan linear).
    let mut no_strings_before = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' && i >= no_strings_before {
            match scan_string(b, i) {
                Ok(end) => {
                    last = Some((i, end));
                    i = end;
                }
                Err(stop) => {
                    no_strings_before = stop;
                    i += 1;
                }
            }
        } else if is_word_byte(c) {
            let start = i;
            while i < b.len() && is_word_byte(b[i]) {
                i += 1;
            }
            let mut end = i;
            while end > start && b[end - 1] == b'.' {
                end -= 1;
            }
            if is_json_literal(&b[start..end]) {
                last = Some((start, end));
            }
        } else {
            i += 1;
        }
    }
    last
}

/// A JSON string starting at the quote `b[start]`: `Ok(end)` (just past the closing
/// quote) if it closes on the same line with valid escapes, else `Err(stop)`: where the
/// scan stopped (a control character, or the end).
fn scan_string(b: &[u8], start: usize) -> Result<usize, usize> {
    let mut i = start + 1;
    let mut valid = true;
    while i < b.len() {
        match b[i] {
            c if c < 0x20 => return Err(i),
            b'"' => return if valid { Ok(i + 1) } else { Err(i + 1) },
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = b.get(i + 2..i + 6);
                        if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            i += 6;
                        } else {
                            valid = false;
                            i += 2;
                        }
                    }
                    // Invalid escape: keep looking for the closing quote, but fail.
                    Some(c) if *c >= 0x20 => {
                        valid = false;
                        i += 2;
                    }
                    _ => {
                        valid = false;
                        i += 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    Err(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(s: &str) -> Option<&str> {
        extract(s, ExtractMode::Json).ok().map(|e| e.text)
    }

    #[test]
    fn number_grammar() {
        for ok in [
            "0", "-0", "42", "-7", "3.25", "1e5", "1E+5", "2.5e-3", "-0.0",
        ] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.2.3", "--1",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn info_strings() {
        assert!(is_info_string(""));
        assert!(is_info_string("json"));
        assert!(is_info_string("c++"));
        assert!(!is_info_string("[1,"));
        assert!(!is_info_string("42"));
        assert!(!is_info_string("json {"));
    }

    #[test]
    fn composite_validity_tracks_the_grammar() {
        assert_eq!(
            json_of(r#"x {"a": [1, {"b": null}], "c": "d"} y"#),
            Some(r#"{"a": [1, {"b": null}], "c": "d"}"#)
        );
        assert_eq!(json_of("[1, 2,] and [3]"), Some("[3]"));
        assert_eq!(json_of("[1 2] or [[]]"), Some("[[]]"));
        assert_eq!(json_of(r#"{"a" 1} {"a":}{"k":1}"#), Some(r#"{"k":1}"#));
        assert_eq!(
            json_of(r#"["\q"] ["\u00e9", "\n"]"#),
            Some(r#"["\u00e9", "\n"]"#)
        );
        assert_eq!(json_of(r#"["\u12"]"#), None);
        assert_eq!(last_composite(b"[tru] [01] [1.] [-] [1e] [+1]"), None);
        // ... though the scalar rule reads `1.` as a sentence-final `1`.
        assert_eq!(json_of("[tru] [01] [1.] [-]"), Some("1"));
    }
}
