//! A small JSON reader over PostgreSQL's `to_json` text: a value tree that keeps object keys in
//! order, numbers as their text and strings as their raw (escaped) text, so that what needs no
//! change is copied byte for byte; and the string encoding Python's `json.dumps(...,
//! ensure_ascii=False)` uses, for what must be re-encoded.

/// A JSON value borrowing from its text.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` or `false`, as written.
    Bool(&'a str),
    /// A number, as written.
    Number(&'a str),
    /// A string, as written (quotes and escapes included).
    String(&'a str),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object: (raw key, value) in order, duplicates kept.
    Object(Vec<(&'a str, Json<'a>)>),
}

/// Nesting deeper than this is refused (the renderer declines; Python takes over).
const MAX_DEPTH: usize = 128;

/// Parses `text` whole; `None` if it is not one JSON value.
pub fn parse(text: &str) -> Option<Json<'_>> {
    let mut reader = Reader { text, at: 0 };
    let value = reader.value(0)?;
    reader.skip_space();
    (reader.at == text.len()).then_some(value)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_space(&mut self) {
        while matches!(
            self.bytes().get(self.at),
            Some(b' ' | b'\t' | b'\n' | b'\r')
        ) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.bytes().get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        let start = self.at;
        match *self.bytes().get(self.at)? {
            b'n' => self.literal("null").map(|_| Json::Null),
            b't' => self.literal("true").map(Json::Bool),
            b'f' => self.literal("false").map(Json::Bool),
            b'"' => {
                self.string_end()?;
                Some(Json::String(&self.text[start..self.at]))
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Json::Array(items))
            }
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.skip_space();
                        let key_start = self.at;
                        if self.bytes().get(self.at) != Some(&b'"') {
                            return None;
                        }
                        self.string_end()?;
                        let key = &self.text[key_start..self.at];
                        if !self.eat(b':') {
                            return None;
                        }
                        members.push((key, self.value(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Json::Object(members))
            }
            b'-' | b'0'..=b'9' => {
                self.at += 1;
                while matches!(
                    self.bytes().get(self.at),
                    Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                ) {
                    self.at += 1;
                }
                let number = &self.text[start..self.at];
                number.parse::<f64>().ok()?;
                Some(Json::Number(number))
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &'static str) -> Option<&'a str> {
        let start = self.at;
        self.text[self.at..].starts_with(word).then(|| {
            self.at += word.len();
            &self.text[start..self.at]
        })
    }

    /// Moves past a string starting at the opening quote.
    fn string_end(&mut self) -> Option<()> {
        self.at += 1;
        loop {
            match *self.bytes().get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => self.at += 2,
                byte if byte < 0x20 => return None,
                _ => self.at += 1,
            }
        }
    }
}

/// The text a raw JSON string (with its quotes) stands for; `None` for a lone surrogate,
/// which Python could decode but never encode as UTF-8.
pub fn decode_string(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(inner.to_string());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let unit = hex4(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&unit) {
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let low = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    unit
                };
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut value = 0;
    for _ in 0..4 {
        value = value * 16 + chars.next()?.to_digit(16)?;
    }
    Some(value)
}

/// `text` as Python's `json.dumps(text, ensure_ascii=False)` writes it.
pub fn encode_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether a raw string from PostgreSQL is already in Python's encoding (PostgreSQL escapes
/// the same characters the same way, but a `json` value keeps the escapes it was written with).
pub fn is_python_encoded(raw: &str) -> bool {
    match decode_string(raw) {
        Some(text) => {
            let mut again = String::with_capacity(raw.len());
            encode_string(&text, &mut again);
            again == raw
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_text() {
        let value = parse(r#" {"a": [1, 2.50, "x\n"], "b": {"c": null, "c": true}} "#).unwrap();
        let Json::Object(members) = value else {
            panic!()
        };
        assert_eq!(members[0].0, "\"a\"");
        assert_eq!(
            members[0].1,
            Json::Array(vec![
                Json::Number("1"),
                Json::Number("2.50"),
                Json::String("\"x\\n\"")
            ])
        );
        assert!(matches!(&members[1].1, Json::Object(inner) if inner.len() == 2));
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "01x",
            "\"\u{1}\"",
            "nul",
            "[1] x",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        assert!(parse(&"[".repeat(200)).is_none());
    }

    #[test]
    fn strings_round_trip_as_python_writes_them() {
        assert_eq!(decode_string(r#""\u00e9\ud83d\ude00\/""#).unwrap(), "é😀/");
        assert!(decode_string(r#""\ud800""#).is_none());
        let mut out = String::new();
        encode_string("a\"\\\n\u{1}é\u{7f}", &mut out);
        assert_eq!(out, "\"a\\\"\\\\\\n\\u0001é\u{7f}\"");
        assert!(is_python_encoded(r#""plain é \n""#));
        assert!(!is_python_encoded(r#""\u00e9""#));
        assert!(!is_python_encoded(r#""\/""#));
    }
}
