//! A small read-only XML tree over quick-xml, enough for vim25 SOAP answers.
//!
//! vim25 answers are small (a page of properties), and their meaning depends
//! on `xsi:type` attributes and nesting, so a tree with local names is simpler
//! and safer to read than a streaming state machine. Namespaces are dropped:
//! vim25 uses one namespace for everything we read.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// One element: local name, attributes by local name, text, children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    /// Attributes: local name, whether it had a namespace prefix, value.
    pub(crate) attrs: Vec<(String, bool, String)>,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// The first child called `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of child names.
    pub(crate) fn path(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, name| e.child(name))
    }

    /// Trimmed text of the child at `path`.
    pub(crate) fn text_at(&self, path: &[&str]) -> Option<&str> {
        self.path(path).map(|e| e.text.trim())
    }

    /// An unprefixed attribute (`type` of a managed object reference).
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, prefixed, _)| !prefixed && k == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// The `xsi:type` attribute, whatever prefix names the XML Schema
    /// instance namespace (vcsim uses `XMLSchema-instance:type`), without
    /// its own prefix (`xsd:string` gives `string`).
    pub(crate) fn xsi_type(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, prefixed, _)| *prefixed && k == "type")
            .map(|(_, _, v)| v.rsplit(':').next().unwrap_or(v))
    }

    /// Parses `<x>true</x>`.
    pub(crate) fn bool_at(&self, path: &[&str]) -> Option<bool> {
        match self.text_at(path)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed XML: {0}")]
pub(crate) struct XmlError(pub(crate) String);

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => s.into_owned(),
    }
}

fn open(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, XmlError> {
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Default::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| XmlError(e.to_string()))?;
        let key = local(a.key.as_ref());
        // Namespace declarations carry no data we use.
        if a.key.as_ref().starts_with(b"xmlns") {
            continue;
        }
        let prefixed = a.key.as_ref().contains(&b':');
        let v = a.unescape_value().map_err(|e| XmlError(e.to_string()))?;
        el.attrs.push((key, prefixed, v.into_owned()));
    }
    Ok(el)
}

/// Parses a whole document and returns its root element.
pub(crate) fn parse(doc: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(doc);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| XmlError(format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(e) => stack.push(open(&e)?),
            Event::Empty(e) => {
                let el = open(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    let s = t.decode().map_err(|e| XmlError(e.to_string()))?;
                    cur.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(cur) = stack.last_mut() {
                    let s = t.decode().map_err(|e| XmlError(e.to_string()))?;
                    cur.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(cur) = stack.last_mut() {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| XmlError(e.to_string()))? {
                        cur.text.push(c);
                    } else {
                        let name = r.decode().map_err(|e| XmlError(e.to_string()))?;
                        let v = resolve_predefined_entity(&name)
                            .ok_or_else(|| XmlError(format!("unknown entity &{name};")))?;
                        cur.text.push_str(v);
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError("document ends inside an element".into()));
    }
    root.ok_or_else(|| XmlError("empty document".into()))
}

/// Escapes text for element content and attribute values.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_names_attributes_entities() {
        let doc = r#"<?xml version="1.0"?>
            <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
              <soapenv:Body><r><val xsi:type="xsd:string">a &amp; b &#65;</val><e/></r></soapenv:Body>
            </soapenv:Envelope>"#;
        let root = parse(doc).expect("parses");
        assert_eq!(root.name, "Envelope");
        let val = root.path(&["Body", "r", "val"]).expect("val");
        assert_eq!(val.text, "a & b A");
        assert_eq!(val.xsi_type(), Some("string"));
        assert_eq!(val.attr("type"), None);
        let r = parse(r#"<val xmlns:x="http://www.w3.org/2001/XMLSchema-instance" x:type="ManagedObjectReference" type="ClusterComputeResource">domain-c7</val>"#)
            .expect("parses");
        assert_eq!(r.attr("type"), Some("ClusterComputeResource"));
        assert_eq!(r.xsi_type(), Some("ManagedObjectReference"));
        assert!(root.path(&["Body", "r", "e"]).is_some());
    }

    #[test]
    fn rejects_truncated_and_empty_documents() {
        assert!(parse("<a><b></b>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a></b>").is_err());
        assert!(parse("<a>&bogus;</a>").is_err());
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }
}
