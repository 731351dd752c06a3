//! A document tree that remembers the line of every key and value, read
//! from TOML or JSON, so an error about a plan or hosts file can name the
//! line an operator has to fix (serde alone forgets positions once a value
//! is deserialised).
//!
//! TOML comes from `toml`'s spanned parser. JSON is first checked by
//! `serde_json` (its syntax errors carry line and column) and then walked by
//! the small scanner below, which only has to record where each value starts.

use serde_json::Value as Json;

/// A value and the (1-based) line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) line: usize,
    pub(crate) value: Val,
}

/// The kinds of value both formats share (TOML datetimes become strings).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// A key of a table, with its own line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) line: usize,
    pub(crate) node: Node,
}

/// A syntax error: line (when known) and message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

/// Line (1-based) of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.bytes().take(offset).filter(|b| *b == b'\n').count() + 1
}

impl Node {
    /// The table entries, if a table.
    pub(crate) fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Val::Table(e) => Some(e),
            _ => None,
        }
    }

    /// The entry `key` of a table.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// A short name of the value's type, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self.value {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a number",
            Val::Str(_) => "a string",
            Val::Array(_) => "an array",
            Val::Table(_) => "a table",
        }
    }

    /// The value as plain JSON (lines dropped), for serde.
    pub(crate) fn to_json(&self) -> Json {
        match &self.value {
            Val::Null => Json::Null,
            Val::Bool(b) => Json::Bool(*b),
            Val::Int(i) => Json::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Val::Str(s) => Json::String(s.clone()),
            Val::Array(a) => Json::Array(a.iter().map(Node::to_json).collect()),
            Val::Table(t) => Json::Object(
                t.iter()
                    .map(|e| (e.key.clone(), e.node.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses a TOML document.
pub(crate) fn parse_toml(text: &str) -> Result<Node, SyntaxError> {
    use toml::de::{DeTable, DeValue};
    let table = DeTable::parse(text).map_err(|e| SyntaxError {
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().trim().to_string(),
    })?;

    fn conv(text: &str, span: std::ops::Range<usize>, v: &DeValue<'_>) -> Node {
        let line = line_of(text, span.start);
        let value = match v {
            DeValue::String(s) => Val::Str(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Val::Int(n),
                // Out of i64 range: keep the text so the type error names it.
                Err(_) => Val::Str(i.as_str().to_string()),
            },
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) => Val::Float(x),
                Err(_) => Val::Str(f.as_str().to_string()),
            },
            DeValue::Boolean(b) => Val::Bool(*b),
            DeValue::Datetime(d) => Val::Str(d.to_string()),
            DeValue::Array(a) => Val::Array(
                a.iter()
                    .map(|x| conv(text, x.span(), x.get_ref()))
                    .collect(),
            ),
            DeValue::Table(t) => Val::Table(table_entries(text, t)),
        };
        Node { line, value }
    }

    fn table_entries(text: &str, t: &DeTable<'_>) -> Vec<Entry> {
        let mut out: Vec<Entry> = t
            .iter()
            .map(|(k, v)| Entry {
                key: k.get_ref().to_string(),
                line: line_of(text, k.span().start),
                node: conv(text, v.span(), v.get_ref()),
            })
            .collect();
        // The map is ordered by key; file order reads better in messages.
        out.sort_by_key(|e| e.line);
        out
    }

    let span = table.span();
    Ok(Node {
        line: line_of(text, span.start),
        value: Val::Table(table_entries(text, table.get_ref())),
    })
}

/// Parses a JSON document.
pub(crate) fn parse_json(text: &str) -> Result<Node, SyntaxError> {
    // serde_json first: it knows every syntax rule and says where it broke.
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let msg = e.to_string();
        // "… at line 3 column 5": the line is reported separately.
        let message = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        return Err(SyntaxError {
            line: Some(e.line()),
            message,
        });
    }
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    s.ws();
    let node = s.value().ok_or_else(|| SyntaxError {
        line: Some(line_of(text, s.pos)),
        message: "cannot read this JSON value".into(),
    })?;
    Ok(node)
}

/// Walks JSON that serde_json has already accepted, recording positions.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        self.pos += 1; // opening quote
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return serde_json::from_str(&self.text[start..self.pos]).ok();
                }
                _ => self.pos += 1,
            }
        }
        None
    }

    fn value(&mut self) -> Option<Node> {
        self.ws();
        let line = line_of(self.text, self.pos);
        let value =
            match *self.bytes.get(self.pos)? {
                b'{' => {
                    self.pos += 1;
                    let mut entries = Vec::new();
                    if !self.eat(b'}') {
                        loop {
                            self.ws();
                            let kline = line_of(self.text, self.pos);
                            let key = self.string()?;
                            if !self.eat(b':') {
                                return None;
                            }
                            let node = self.value()?;
                            entries.push(Entry {
                                key,
                                line: kline,
                                node,
                            });
                            if self.eat(b',') {
                                continue;
                            }
                            if self.eat(b'}') {
                                break;
                            }
                            return None;
                        }
                    }
                    Val::Table(entries)
                }
                b'[' => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    if !self.eat(b']') {
                        loop {
                            items.push(self.value()?);
                            if self.eat(b',') {
                                continue;
                            }
                            if self.eat(b']') {
                                break;
                            }
                            return None;
                        }
                    }
                    Val::Array(items)
                }
                b'"' => Val::Str(self.string()?),
                _ => {
                    let start = self.pos;
                    while self.bytes.get(self.pos).is_some_and(|b| {
                        !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace()
                    }) {
                        self.pos += 1;
                    }
                    match &self.text[start..self.pos] {
                        "null" => Val::Null,
                        "true" => Val::Bool(true),
                        "false" => Val::Bool(false),
                        num => match num.parse::<i64>() {
                            Ok(i) => Val::Int(i),
                            Err(_) => Val::Float(num.parse().ok()?),
                        },
                    }
                }
            };
        Some(Node { line, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_positions_follow_the_text() {
        let text = "{\n  \"a\": 1,\n  \"b\": [\n    \"x\\\"y\",\n    {\"c\": null}\n  ]\n}\n";
        let n = parse_json(text).unwrap();
        assert_eq!(n.line, 1);
        let a = n.get("a").unwrap();
        assert_eq!((a.line, &a.node.value), (2, &Val::Int(1)));
        let b = n.get("b").unwrap();
        let Val::Array(items) = &b.node.value else {
            panic!()
        };
        assert_eq!(items[0].line, 4);
        assert_eq!(items[0].value, Val::Str("x\"y".into()));
        assert_eq!(items[1].line, 5);
        assert_eq!(items[1].get("c").unwrap().node.value, Val::Null);
        assert_eq!(
            n.to_json(),
            serde_json::json!({"a": 1, "b": ["x\"y", {"c": null}]})
        );
    }

    #[test]
    fn json_syntax_errors_name_the_line() {
        let e = parse_json("[\n {\"a\": 1},\n {\"a\" 2}\n]").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("expected `:`"), "{}", e.message);
    }

    #[test]
    fn toml_positions_and_types() {
        let text = "name = \"x\"\n\n[policy]\nmaxConcurrent = 0x10\nratio = 1.5\nwhen = 2024-01-01T00:00:00Z\n\n[[packages]]\ncomponent = \"159\"\n";
        let n = parse_toml(text).unwrap();
        assert_eq!(n.get("name").unwrap().line, 1);
        let pol = &n.get("policy").unwrap().node;
        assert_eq!(pol.get("maxConcurrent").unwrap().line, 4);
        assert_eq!(pol.get("maxConcurrent").unwrap().node.value, Val::Int(16));
        assert_eq!(pol.get("ratio").unwrap().node.value, Val::Float(1.5));
        assert_eq!(
            pol.get("when").unwrap().node.value,
            Val::Str("2024-01-01T00:00:00Z".into())
        );
        let Val::Array(p) = &n.get("packages").unwrap().node.value else {
            panic!()
        };
        assert_eq!(p[0].get("component").unwrap().line, 9);
    }

    #[test]
    fn toml_syntax_errors_name_the_line() {
        let e = parse_toml("a = 1\nb = \n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
