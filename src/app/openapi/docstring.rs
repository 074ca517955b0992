//! The handler's docstring, read from the script's text: the description of its operation in
//! the tenant's OpenAPI document.
//!
//! A small scanner, not a Python parser: it skips strings and comments so that neither a
//! `def handler` inside a string nor a quote inside a comment misleads it, finds the last
//! module-level `def handler` (the one Python keeps), and reads the string literal that opens
//! its body. A script it cannot read simply has no description; the script itself is compiled
//! by the interpreter at deploy, never here.

/// Longest description kept, in characters: the document is served on every request for it.
const MAX_CHARS: usize = 16 * 1024;

/// The docstring of the script's module-level `handler`, cleaned as `inspect.cleandoc` does;
/// `None` when it has none.
pub fn handler_docstring(script: &str) -> Option<String> {
    let source = script.as_bytes();
    let body = last_handler_body(source)?;
    let start = skip_blank(source, body);
    let (text, raw) = literal_at(source, start)?;
    let text = if raw {
        text.to_string()
    } else {
        unescape(text)
    };
    let cleaned = cleandoc(&text);
    (!cleaned.is_empty()).then(|| cleaned.chars().take(MAX_CHARS).collect())
}

/// Index just after the `:` that ends the last module-level `def handler(...)` line. One pass
/// over the script, then one over the last signature: linear in the script's length.
fn last_handler_body(source: &[u8]) -> Option<usize> {
    let mut last = None;
    let mut i = 0;
    let mut depth = 0usize;
    let mut line_start = true;
    while i < source.len() {
        let c = source[i];
        if line_start
            && depth == 0
            && let Some(after) = handler_def_at(source, i)
        {
            last = Some(after);
        }
        line_start = false;
        match c {
            b'\n' => {
                line_start = true;
                i += 1;
            }
            b'#' => i = line_end(source, i),
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'\\' => i += 2,
            _ if c == b'_' || c.is_ascii_alphabetic() => {
                let end = identifier_end(source, i);
                i = match string_after_prefix(source, i, end) {
                    Some(quote) => skip_string(source, quote).end,
                    None => end,
                };
            }
            b'\'' | b'"' => i = skip_string(source, i).end,
            _ => i += 1,
        }
    }
    signature_end(source, last?)
}

/// If `def handler` (or `async def handler`) starts at `i`, the index after the name.
fn handler_def_at(source: &[u8], i: usize) -> Option<usize> {
    let rest = &source[i..];
    let rest_at = if rest.starts_with(b"async") {
        i + 5 + whitespace_len(&source[i + 5..])
    } else {
        i
    };
    let after_def = source[rest_at..].strip_prefix(b"def")?;
    let gap = whitespace_len(after_def);
    let name_at = rest_at + 3 + gap;
    if gap == 0 || !source[name_at..].starts_with(b"handler") {
        return None;
    }
    let after = name_at + "handler".len();
    let next = source.get(after).copied().unwrap_or(b'\n');
    (next == b'(' || next == b' ' || next == b'\t').then_some(after)
}

/// From after the name, the index after the `:` closing the signature.
fn signature_end(source: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < source.len() {
        match source[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.checked_sub(1)?,
            b':' if depth == 0 => return Some(i + 1),
            b'#' => i = line_end(source, i) - 1,
            b'\'' | b'"' => i = skip_string(source, i).end - 1,
            b'\n' if depth == 0 => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Skips spaces, newlines, comments and line continuations.
fn skip_blank(source: &[u8], mut i: usize) -> usize {
    while i < source.len() {
        match source[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => i += 1,
            b'\\' if source.get(i + 1) == Some(&b'\n') => i += 2,
            b'#' => i = line_end(source, i),
            _ => break,
        }
    }
    i
}

/// The string literal at `i` (with an `r`/`u` prefix, never `b` or `f`): its text between the
/// quotes and whether it is raw.
fn literal_at(source: &[u8], i: usize) -> Option<(&str, bool)> {
    let end = identifier_end(source, i);
    let quote = if end > i {
        string_after_prefix(source, i, end)?
    } else if matches!(source.get(i), Some(b'\'' | b'"')) {
        i
    } else {
        return None;
    };
    let prefix = source[i..end].to_ascii_lowercase();
    if prefix.contains(&b'b') || prefix.contains(&b'f') || prefix.contains(&b't') {
        return None;
    }
    let string = skip_string(source, quote);
    if !string.terminated {
        return None;
    }
    let quotes = if is_triple(source, quote) { 3 } else { 1 };
    let text = std::str::from_utf8(&source[string.open..string.end - quotes]).ok()?;
    Some((text, prefix.contains(&b'r')))
}

/// If the identifier `source[start..end]` is a string prefix directly followed by a quote,
/// the quote's index.
fn string_after_prefix(source: &[u8], start: usize, end: usize) -> Option<usize> {
    let prefix = &source[start..end];
    let is_prefix = prefix.len() <= 2 && prefix.iter().all(|c| b"rRbBuUfFtT".contains(c));
    (is_prefix && matches!(source.get(end), Some(b'\'' | b'"'))).then_some(end)
}

fn is_triple(source: &[u8], quote: usize) -> bool {
    let q = source[quote];
    source.get(quote + 1) == Some(&q) && source.get(quote + 2) == Some(&q)
}

/// Where a string literal lies.
struct Span {
    /// Index after the opening quotes.
    open: usize,
    /// Index after the closing quotes, or where an unterminated one stops (its line's end
    /// for one quote, the input's end for three).
    end: usize,
    terminated: bool,
}

/// The string whose opening quote is at `quote`. A backslash always keeps the next character
/// from closing it, raw or not.
fn skip_string(source: &[u8], quote: usize) -> Span {
    let q = source[quote];
    let triple = is_triple(source, quote);
    let open = quote + if triple { 3 } else { 1 };
    let mut i = open;
    while i < source.len() {
        match source[i] {
            b'\\' => i += 2,
            b'\n' if !triple => break,
            c if c == q && (!triple || is_triple(source, i)) => {
                let end = i + if triple { 3 } else { 1 };
                return Span {
                    open,
                    end,
                    terminated: true,
                };
            }
            _ => i += 1,
        }
    }
    Span {
        open,
        end: i.min(source.len()),
        terminated: false,
    }
}

fn identifier_end(source: &[u8], mut i: usize) -> usize {
    while i < source.len() && (source[i] == b'_' || source[i].is_ascii_alphanumeric()) {
        i += 1;
    }
    i
}

fn line_end(source: &[u8], i: usize) -> usize {
    source[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(source.len(), |n| i + n)
}

fn whitespace_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|c| **c == b' ' || **c == b'\t')
        .count()
}

/// Python's escapes of a non-raw literal; unknown ones stay as written, as Python keeps them.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\n') => {}
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `inspect.cleandoc`: tabs expanded, the first line's leading space and the other lines'
/// common indentation removed, blank lines at both ends dropped.
fn cleandoc(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(|l| l.replace('\t', "        ")).collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut cleaned: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            if n == 0 {
                l.trim_start().to_string()
            } else {
                l.get(indent..).unwrap_or("").trim_end().to_string()
            }
        })
        .collect();
    while cleaned.first().is_some_and(|l| l.trim().is_empty()) {
        cleaned.remove(0);
    }
    while cleaned.last().is_some_and(|l| l.trim().is_empty()) {
        cleaned.pop();
    }
    cleaned.join("\n")
}

#[cfg(test)]
mod tests {
    use super::handler_docstring as doc;

    #[test]
    fn reads_the_handlers_docstring_as_python_cleans_it() {
        let script = "import pq\n\ndef handler():\n    \"\"\"List accounts.\n\n    Newest first.\n    \"\"\"\n    return []\n";
        assert_eq!(
            doc(script).as_deref(),
            Some("List accounts.\n\nNewest first.")
        );
        assert_eq!(
            doc("def handler(request):\n    'One line, \\'quoted\\'.'\n").as_deref(),
            Some("One line, 'quoted'.")
        );
        assert_eq!(
            doc("async def handler( a = ')' ,\n  b=1) -> dict:  # note\n    # comment\n    r'''raw \\n'''\n").as_deref(),
            Some("raw \\n")
        );
        assert_eq!(
            doc("def handler(): 'same line'\n").as_deref(),
            Some("same line")
        );
    }

    #[test]
    fn only_a_module_level_handler_counts_and_the_last_one_wins() {
        assert_eq!(doc("def handler():\n    return 1\n"), None);
        assert_eq!(
            doc("class A:\n    def handler(self):\n        'no'\n"),
            None
        );
        assert_eq!(
            doc("s = '''\ndef handler():\n    \"inside a string\"\n'''\n"),
            None
        );
        assert_eq!(
            doc("def handler():\n    'first'\ndef handler():\n    'second'\n").as_deref(),
            Some("second")
        );
        assert_eq!(doc("def handlers():\n    'other'\n"), None);
        assert_eq!(doc("x = (\ndef handler():\n    'in brackets'\n"), None);
    }

    #[test]
    fn bytes_fstrings_and_broken_scripts_have_no_docstring() {
        assert_eq!(doc("def handler():\n    b'bytes'\n"), None);
        assert_eq!(doc("def handler():\n    f'{x}'\n"), None);
        assert_eq!(doc("def handler():\n    '''never closed\n"), None);
        assert_eq!(doc("def handler(:\n"), None);
        assert_eq!(doc(""), None);
        assert_eq!(doc("def handler():\n    '   '\n"), None);
        // Hostile shapes end, and end quickly.
        let deep = format!("def handler({}):\n    'x'\n", "(".repeat(100_000));
        assert_eq!(doc(&deep), None);
        assert_eq!(doc(&"\\".repeat(10_001)), None);
    }

    #[test]
    fn long_docstrings_are_cut() {
        let script = format!("def handler():\n    '{}'\n", "a".repeat(100_000));
        assert_eq!(doc(&script).map(|d| d.len()), Some(super::MAX_CHARS));
    }
}
