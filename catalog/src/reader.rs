//! The streaming catalog reader: bytes → (gunzip) → (decode to UTF-8) →
//! quick-xml pull parser → [`Catalog`]. Nothing is held in memory but the
//! result and a few buffers, so the full online catalog reads in one pass.
//!
//! Layers, each a `Read`/`BufRead`:
//! 1. sniffing: `.cab` (`MSCF`) is refused, gzip (`1F 8B`) is unwrapped;
//! 2. `DecodingReader`: the BOM (FF FE / FE FF / EF BB BF), or for
//!    BOM-less files the byte pattern of `<?` and then the XML declaration,
//!    chooses the encoding; encoding_rs decodes to UTF-8 and reports the
//!    offset of the first malformed byte instead of replacing it;
//! 3. `PositionTracker`: counts lines of what the parser consumed, so
//!    every error names a line and column;
//! 4. the parser matches **local** names, so a default namespace
//!    (`xmlns="openmanage/cm/dm"`) or a prefix changes nothing.

use crate::error::{CatalogError, Position};
use crate::model::*;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
use flate2::read::MultiGzDecoder;
use quick_xml::events::{BytesStart, Event};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads a catalog file (`.xml` or `.xml.gz`, by content, not by name).
pub fn read_catalog_file(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    if is_cab_name(&name) {
        return Err(CatalogError::CabNotSupported { file: name });
    }
    let file = std::fs::File::open(path).map_err(|e| CatalogError::Io {
        file: name.clone(),
        message: e.to_string(),
    })?;
    read_catalog(file, &name)
}

/// Reads a catalog held in memory.
pub fn read_catalog_bytes(bytes: &[u8], name: &str) -> Result<Catalog, CatalogError> {
    read_catalog(bytes, name)
}

/// Whether a file name or URL names a `.cab` catalog.
pub(crate) fn is_cab_name(name: &str) -> bool {
    let path = name.split(['?', '#']).next().unwrap_or(name);
    path.to_ascii_lowercase().ends_with(".cab")
}

/// Reads a catalog from any byte stream; `name` is used in messages.
pub fn read_catalog<R: Read>(input: R, name: &str) -> Result<Catalog, CatalogError> {
    let d = open_decoded(input, name)?;
    let tracker = PositionTracker::new(d.reader);
    let mut parser = Parser::new(name, tracker);
    parser.catalog.encoding = d.encoding.name().to_string();
    parser.catalog.gzip = d.gzip;
    parser.catalog.warnings = d.warning.into_iter().collect();
    parser.run()?;
    Ok(parser.catalog)
}

/// A byte stream unwrapped (gzip) and decoding to UTF-8.
pub(crate) struct Decoded<'a> {
    reader: DecodingReader<Box<dyn Read + 'a>>,
    pub(crate) encoding: &'static Encoding,
    pub(crate) gzip: bool,
    pub(crate) warning: Option<String>,
}

/// Sniffs `.cab`, gzip and the encoding, and returns a UTF-8 stream.
pub(crate) fn open_decoded<'a, R: Read + 'a>(
    mut input: R,
    name: &str,
) -> Result<Decoded<'a>, CatalogError> {
    let mut magic = Vec::with_capacity(4);
    read_up_to(&mut input, &mut magic, 4).map_err(|e| io_error(name, e))?;
    if magic.starts_with(b"MSCF") {
        return Err(CatalogError::CabNotSupported { file: name.into() });
    }
    let head = io::Cursor::new(magic.clone()).chain(input);
    let gzip = magic.starts_with(&[0x1f, 0x8b]);
    let mut stream: Box<dyn Read + 'a> = if gzip {
        let counter = Arc::new(AtomicU64::new(0));
        let counted = CountingReader {
            inner: head,
            count: counter.clone(),
        };
        Box::new(GzipStage {
            inner: MultiGzDecoder::new(counted),
            compressed: counter,
        })
    } else {
        Box::new(head)
    };
    let mut prefix = Vec::with_capacity(1024);
    read_up_to(&mut stream, &mut prefix, 1024).map_err(|e| stage_error(name, e))?;
    if gzip && prefix.starts_with(b"MSCF") {
        return Err(CatalogError::CabNotSupported { file: name.into() });
    }
    let sniff = sniff_encoding(&prefix);
    if let Some(w) = &sniff.warning {
        tracing::warn!(file = name, "{w}");
    }
    prefix.drain(..sniff.bom_len.min(prefix.len()));
    let body: Box<dyn Read + 'a> = Box::new(io::Cursor::new(prefix).chain(stream));
    Ok(Decoded {
        reader: DecodingReader::new(body, sniff.encoding, sniff.bom_len as u64),
        encoding: sniff.encoding,
        gzip,
        warning: sniff.warning,
    })
}

/// The whole document as UTF-8 text (gunzipped, decoded, BOM removed).
pub(crate) fn decode_to_string(input: &[u8], name: &str) -> Result<String, CatalogError> {
    let mut d = open_decoded(input, name)?;
    let mut out = String::new();
    d.reader
        .read_to_string(&mut out)
        .map_err(|e| stage_error(name, e))?;
    Ok(out)
}

/// Appends up to `n` bytes of `r` to `buf` (fewer only at the end of `r`).
fn read_up_to<R: Read>(r: &mut R, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    // read_to_end retries on Interrupted, like a hand-written loop would.
    r.by_ref().take(n as u64).read_to_end(buf).map(|_| ())
}

fn io_error(name: &str, e: io::Error) -> CatalogError {
    CatalogError::Io {
        file: name.into(),
        message: e.to_string(),
    }
}

// ---------------------------------------------------------------- stages

/// Failures of the byte stages, carried through `io::Error` so the XML
/// parser (which only sees `io::Error`) hands them back intact.
#[derive(Debug)]
enum StageError {
    Gzip {
        offset: u64,
        message: String,
    },
    Encoding {
        offset: u64,
        encoding: &'static str,
        message: String,
    },
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageError::Gzip { offset, message } => write!(f, "gzip at {offset}: {message}"),
            StageError::Encoding {
                offset,
                encoding,
                message,
            } => write!(f, "{encoding} at {offset}: {message}"),
        }
    }
}

impl std::error::Error for StageError {}

fn stage_error(name: &str, e: io::Error) -> CatalogError {
    match e.get_ref().and_then(|r| r.downcast_ref::<StageError>()) {
        Some(s) => from_stage(name, s),
        None => io_error(name, e),
    }
}

fn from_stage(name: &str, s: &StageError) -> CatalogError {
    match s {
        StageError::Gzip { offset, message } => CatalogError::Gzip {
            file: name.into(),
            position: Position {
                line: None,
                column: None,
                offset: *offset,
            },
            message: message.clone(),
        },
        StageError::Encoding {
            offset,
            encoding,
            message,
        } => CatalogError::Encoding {
            file: name.into(),
            encoding: (*encoding).into(),
            position: Position {
                line: None,
                column: None,
                offset: *offset,
            },
            message: message.clone(),
        },
    }
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Turns the decompressor's errors into [`StageError::Gzip`] with the
/// number of compressed bytes read so far.
struct GzipStage<R> {
    inner: MultiGzDecoder<R>,
    compressed: Arc<AtomicU64>,
}

impl<R: Read> Read for GzipStage<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let message = if e.kind() == io::ErrorKind::UnexpectedEof {
                format!("truncated gzip stream ({e})")
            } else {
                e.to_string()
            };
            io::Error::other(StageError::Gzip {
                offset: self.compressed.load(Ordering::Relaxed),
                message,
            })
        })
    }
}

/// The encoding chosen for a document.
#[derive(Debug)]
struct Sniffed {
    encoding: &'static Encoding,
    bom_len: usize,
    warning: Option<String>,
}

/// BOM first, then the byte pattern of `<`, then the declaration.
fn sniff_encoding(p: &[u8]) -> Sniffed {
    let plain = |encoding, bom_len| Sniffed {
        encoding,
        bom_len,
        warning: None,
    };
    if p.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return plain(UTF_8, 3);
    }
    if p.starts_with(&[0xFF, 0xFE]) {
        return plain(UTF_16LE, 2);
    }
    if p.starts_with(&[0xFE, 0xFF]) {
        return plain(UTF_16BE, 2);
    }
    if p.starts_with(&[b'<', 0]) {
        return Sniffed {
            encoding: UTF_16LE,
            bom_len: 0,
            warning: Some("UTF-16LE without a byte order mark; decoded as UTF-16LE".into()),
        };
    }
    if p.starts_with(&[0, b'<']) {
        return Sniffed {
            encoding: UTF_16BE,
            bom_len: 0,
            warning: Some("UTF-16BE without a byte order mark; decoded as UTF-16BE".into()),
        };
    }
    let Some(label) = declared_encoding(p) else {
        return plain(UTF_8, 0);
    };
    match Encoding::for_label(label.as_bytes()) {
        Some(e) if e == UTF_8 => plain(UTF_8, 0),
        // Re-saved catalogs keep Dell's `encoding="utf-16"` while the bytes
        // are 8-bit: the bytes are the truth.
        Some(e) if e == UTF_16LE || e == UTF_16BE => Sniffed {
            encoding: UTF_8,
            bom_len: 0,
            warning: Some(format!(
                "declares encoding {label:?} but the bytes are 8-bit; decoded as UTF-8"
            )),
        },
        Some(e) if e.is_ascii_compatible() => plain(e, 0),
        _ => Sniffed {
            encoding: UTF_8,
            bom_len: 0,
            warning: Some(format!(
                "unknown declared encoding {label:?}; decoded as UTF-8"
            )),
        },
    }
}

/// The `encoding` pseudo-attribute of an 8-bit XML declaration.
fn declared_encoding(p: &[u8]) -> Option<String> {
    let end = p.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(p.get(..end)?).ok()?;
    if !decl.trim_start().starts_with("<?xml") {
        return None;
    }
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let value = &rest[1..];
    let close = value.find(quote)?;
    Some(value[..close].to_string())
}

/// Decodes any encoding to UTF-8, streaming, refusing malformed input.
struct DecodingReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    encoding: &'static Encoding,
    inbuf: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    out: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    /// Offset (in the decompressed file) of the next input byte to decode.
    consumed: u64,
    eof: bool,
    done: bool,
}

const CHUNK: usize = 64 * 1024;

impl<R: Read> DecodingReader<R> {
    fn new(inner: R, encoding: &'static Encoding, start_offset: u64) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            encoding,
            inbuf: vec![0u8; CHUNK].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            // UTF-16 → UTF-8 grows at most 3/2; keep room for that.
            out: vec![0u8; CHUNK * 2].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            consumed: start_offset,
            eof: false,
            done: false,
        }
    }
}

/// Copies as much of `src` as fits to the start of `dst`; returns how much.
fn copy_prefix(src: &[u8], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    if let (Some(to), Some(from)) = (dst.get_mut(..n), src.get(..n)) {
        to.copy_from_slice(from);
    }
    n
}

/// The decoder's positions left its buffer: a bug here, reported as an
/// I/O error of the catalog read rather than a panic.
fn buffer_out_of_range(which: &str) -> io::Error {
    io::Error::other(format!(
        "catalog decoder: {which} buffer position out of range"
    ))
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = copy_prefix(avail, buf);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for DecodingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.out_pos >= self.out_len && !self.done {
            if self.in_pos >= self.in_len && !self.eof {
                let n = loop {
                    match self.inner.read(&mut self.inbuf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                };
                self.in_pos = 0;
                self.in_len = n;
                if n == 0 {
                    self.eof = true;
                }
            }
            let pending = self
                .inbuf
                .get(self.in_pos..self.in_len)
                .ok_or_else(|| buffer_out_of_range("input"))?;
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(pending, &mut self.out, self.eof);
            self.in_pos += read;
            self.consumed += read as u64;
            self.out_pos = 0;
            self.out_len = written;
            match result {
                encoding_rs::DecoderResult::InputEmpty => {
                    if self.eof {
                        self.done = true;
                    }
                }
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(bad, extra) => {
                    let offset = self
                        .consumed
                        .saturating_sub(u64::from(bad) + u64::from(extra));
                    let message = if self.eof && self.in_pos >= self.in_len {
                        "the file ends inside a character (odd length or cut short)".to_string()
                    } else {
                        format!("{bad} byte(s) that are not valid {}", self.encoding.name())
                    };
                    return Err(io::Error::other(StageError::Encoding {
                        offset,
                        encoding: self.encoding.name(),
                        message,
                    }));
                }
            }
        }
        self.out
            .get(self.out_pos..self.out_len)
            .ok_or_else(|| buffer_out_of_range("output"))
    }

    fn consume(&mut self, amt: usize) {
        self.out_pos = (self.out_pos + amt).min(self.out_len);
    }
}

/// Counts the lines of the decoded text the parser has consumed.
struct PositionTracker<B> {
    inner: B,
    pos: u64,
    newlines: u64,
    /// Offsets of the most recent newlines: an error lies within the
    /// current event, so a bounded window is enough to place it.
    recent: VecDeque<u64>,
}

const RECENT_LINES: usize = 4096;

impl<B: BufRead> PositionTracker<B> {
    fn new(inner: B) -> Self {
        Self {
            inner,
            pos: 0,
            newlines: 0,
            recent: VecDeque::with_capacity(RECENT_LINES),
        }
    }

    /// Line and column of a decoded-text offset at or before `self.pos`.
    fn locate(&self, offset: u64) -> Position {
        let after = self
            .recent
            .iter()
            .rev()
            .take_while(|&&nl| nl >= offset)
            .count() as u64;
        let line = self.newlines.saturating_sub(after) + 1;
        let line_start = self
            .recent
            .iter()
            .rev()
            .find(|&&nl| nl < offset)
            .map(|nl| nl + 1)
            .unwrap_or(0);
        Position {
            line: Some(line),
            column: Some(offset.saturating_sub(line_start) + 1),
            offset,
        }
    }
}

impl<B: BufRead> Read for PositionTracker<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = copy_prefix(avail, buf);
        self.consume(n);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for PositionTracker<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let amt = amt.min(buf.len());
            for (i, b) in buf.iter().take(amt).enumerate() {
                if *b == b'\n' {
                    self.newlines += 1;
                    if self.recent.len() == RECENT_LINES {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(self.pos + i as u64);
                }
            }
            self.pos += amt as u64;
            self.inner.consume(amt);
        }
    }
}

// ---------------------------------------------------------------- parser

/// Elements the reader knows, by local name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Manifest,
    ReleaseNotes,
    InventoryComponent,
    SoftwareBundle,
    SoftwareComponent,
    Name,
    ComponentType,
    Description,
    RevisionHistory,
    LuCategory,
    Category,
    Criticality,
    ImportantInfo,
    SupportedDevices,
    Device,
    PciInfo,
    RollbackInformation,
    PayloadConfiguration,
    Image,
    SupportedSystems,
    TargetSystems,
    Brand,
    Model,
    SupportedOperatingSystems,
    TargetOses,
    OperatingSystem,
    FmpWrappers,
    FmpWrapperInformation,
    Inventory,
    Update,
    Cryptography,
    Hash,
    Contents,
    Package,
    Display,
    Other,
}

impl Tag {
    fn of(local: &[u8]) -> Tag {
        match local {
            b"Manifest" => Tag::Manifest,
            b"ReleaseNotes" => Tag::ReleaseNotes,
            b"InventoryComponent" => Tag::InventoryComponent,
            b"SoftwareBundle" => Tag::SoftwareBundle,
            b"SoftwareComponent" => Tag::SoftwareComponent,
            b"Name" => Tag::Name,
            b"ComponentType" => Tag::ComponentType,
            b"Description" => Tag::Description,
            b"RevisionHistory" => Tag::RevisionHistory,
            b"LUCategory" => Tag::LuCategory,
            b"Category" => Tag::Category,
            b"Criticality" => Tag::Criticality,
            b"ImportantInfo" => Tag::ImportantInfo,
            b"SupportedDevices" => Tag::SupportedDevices,
            b"Device" => Tag::Device,
            b"PCIInfo" => Tag::PciInfo,
            b"RollbackInformation" => Tag::RollbackInformation,
            b"PayloadConfiguration" => Tag::PayloadConfiguration,
            b"Image" => Tag::Image,
            b"SupportedSystems" => Tag::SupportedSystems,
            b"TargetSystems" => Tag::TargetSystems,
            b"Brand" => Tag::Brand,
            b"Model" => Tag::Model,
            b"SupportedOperatingSystems" => Tag::SupportedOperatingSystems,
            b"TargetOSes" => Tag::TargetOses,
            b"OperatingSystem" => Tag::OperatingSystem,
            b"FMPWrappers" => Tag::FmpWrappers,
            b"FMPWrapperInformation" => Tag::FmpWrapperInformation,
            b"Inventory" => Tag::Inventory,
            b"Update" => Tag::Update,
            b"Cryptography" => Tag::Cryptography,
            b"Hash" => Tag::Hash,
            b"Contents" => Tag::Contents,
            b"Package" => Tag::Package,
            b"Display" => Tag::Display,
            _ => Tag::Other,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    tag: Tag,
    /// 0: no Display taken yet, 1: a non-English one, 2: an English one.
    display_taken: u8,
}

/// An attribute: local name and unescaped value, borrowed from the event.
type Attr<'e> = (&'e [u8], Cow<'e, str>);

/// Which object the current element belongs to.
enum Owner {
    None,
    Component(Box<SoftwareComponent>),
    Bundle(Box<SoftwareBundle>),
}

struct Parser<'n, B: BufRead> {
    name: &'n str,
    xml: quick_xml::Reader<PositionTracker<B>>,
    catalog: Catalog,
    stack: Vec<Frame>,
    owner: Owner,
    /// `value` of the coded element being read (ComponentType, Category, …).
    coded: Option<Coded>,
    /// Text being collected (Display, Hash).
    text: Option<String>,
    display_lang_en: bool,
    hash_algorithm: Option<String>,
    seen_root: bool,
    skipped: usize,
}

impl<'n, B: BufRead> Parser<'n, B> {
    fn new(name: &'n str, input: PositionTracker<B>) -> Self {
        let mut xml = quick_xml::Reader::from_reader(input);
        let cfg = xml.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
        Self {
            name,
            xml,
            catalog: Catalog {
                source: name.to_string(),
                ..Default::default()
            },
            stack: Vec::with_capacity(16),
            owner: Owner::None,
            coded: None,
            text: None,
            display_lang_en: false,
            hash_algorithm: None,
            seen_root: false,
            skipped: 0,
        }
    }

    fn here(&self) -> Position {
        let t = self.xml.get_ref();
        t.locate(self.xml.buffer_position().min(t.pos))
    }

    fn xml_error(&self, e: quick_xml::Error) -> CatalogError {
        if let quick_xml::Error::Io(io) = &e
            && let Some(s) = io.get_ref().and_then(|r| r.downcast_ref::<StageError>())
        {
            return from_stage(self.name, s);
        }
        let t = self.xml.get_ref();
        let at = self.xml.error_position();
        let position = if at > 0 {
            t.locate(at.min(t.pos))
        } else {
            self.here()
        };
        CatalogError::Xml {
            file: self.name.into(),
            position,
            message: e.to_string(),
        }
    }

    fn structure(&self, message: impl Into<String>) -> CatalogError {
        CatalogError::Structure {
            file: self.name.into(),
            position: self.here(),
            message: message.into(),
        }
    }

    fn warn(&mut self, message: String) {
        let line = self.here().line.unwrap_or(0);
        let w = format!("line {line}: {message}");
        tracing::debug!(file = self.name, "{w}");
        // Bounded: a pathological file must not grow this without limit.
        if self.catalog.warnings.len() < 1000 {
            self.catalog.warnings.push(w);
        }
    }

    fn run(&mut self) -> Result<(), CatalogError> {
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            let event = match self.xml.read_event_into(&mut buf) {
                Ok(ev) => ev,
                Err(e) => return Err(self.xml_error(e)),
            };
            match event {
                Event::Start(e) => {
                    let tag = Tag::of(e.local_name().as_ref());
                    self.stack.push(Frame {
                        tag,
                        display_taken: 0,
                    });
                    self.open(tag, &e)?;
                }
                Event::Empty(e) => {
                    let tag = Tag::of(e.local_name().as_ref());
                    self.stack.push(Frame {
                        tag,
                        display_taken: 0,
                    });
                    self.open(tag, &e)?;
                    self.close()?;
                    self.stack.pop();
                }
                Event::End(_) => {
                    self.close()?;
                    self.stack.pop();
                }
                Event::Text(t) => {
                    if self.text.is_some() {
                        let s = t.xml_content().map_err(|e| self.xml_error(e.into()))?;
                        if let Some(text) = self.text.as_mut() {
                            text.push_str(&s);
                        }
                    } else if !self.seen_root || self.stack.is_empty() {
                        // Text outside the root is only allowed to be blank.
                        if t.iter().any(|b| !b.is_ascii_whitespace()) {
                            return Err(self.structure("text outside the root element"));
                        }
                    }
                }
                Event::CData(t) => {
                    if self.text.is_some() {
                        let s = t.decode().map_err(|e| self.xml_error(e.into()))?;
                        if let Some(text) = self.text.as_mut() {
                            if s.contains('\r') {
                                text.push_str(&s.replace("\r\n", "\n"));
                            } else {
                                text.push_str(&s);
                            }
                        }
                    }
                }
                Event::GeneralRef(r) => {
                    if self.text.is_some() {
                        let resolved = match r.resolve_char_ref() {
                            Ok(Some(c)) => c.to_string(),
                            Ok(None) => {
                                let name = r.decode().map_err(|e| self.xml_error(e.into()))?;
                                match quick_xml::escape::resolve_predefined_entity(&name) {
                                    Some(s) => s.to_string(),
                                    None => {
                                        self.warn(format!("unknown entity &{name}; kept as is"));
                                        format!("&{name};")
                                    }
                                }
                            }
                            Err(e) => return Err(self.xml_error(e)),
                        };
                        if let Some(text) = self.text.as_mut() {
                            text.push_str(&resolved);
                        }
                    }
                }
                Event::Eof => break,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
        if let Some(open) = self.stack.last() {
            return Err(CatalogError::Xml {
                file: self.name.into(),
                position: self.here(),
                message: format!(
                    "unexpected end of file inside <{:?}> ({} element(s) not closed): the file is truncated",
                    open.tag,
                    self.stack.len()
                ),
            });
        }
        if !self.seen_root {
            return Err(self.structure("no <Manifest> element: empty file or not a Dell catalog"));
        }
        if self.skipped > 0 {
            tracing::warn!(
                file = self.name,
                skipped = self.skipped,
                "catalog entries without path or vendorVersion were skipped"
            );
        }
        Ok(())
    }

    fn parent(&self) -> Tag {
        self.stack.iter().rev().nth(1).map_or(Tag::Other, |f| f.tag)
    }

    fn grandparent(&self) -> Tag {
        self.stack.iter().rev().nth(2).map_or(Tag::Other, |f| f.tag)
    }

    fn open(&mut self, tag: Tag, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        if self.stack.len() == 1 {
            if self.seen_root {
                return Err(self.structure("a second root element"));
            }
            self.seen_root = true;
            return match tag {
                Tag::Manifest => self.manifest_attrs(e),
                _ => {
                    let root = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    let hint = if root == "ManifestIndex" {
                        " (this is a catalog index, not a catalog)"
                    } else if root == "CIM" {
                        " (this is an iDRAC PackageList, not a catalog)"
                    } else {
                        ""
                    };
                    Err(self.structure(format!(
                        "root element is <{root}>, expected <Manifest>{hint}"
                    )))
                }
            };
        }
        let parent = self.parent();
        match tag {
            Tag::InventoryComponent if parent == Tag::Manifest => self.inventory_component(e),
            Tag::SoftwareComponent if parent == Tag::Manifest => {
                let c = self.component_attrs(e)?;
                self.owner = Owner::Component(Box::new(c));
                Ok(())
            }
            Tag::SoftwareBundle if parent == Tag::Manifest => {
                let b = self.bundle_attrs(e)?;
                self.owner = Owner::Bundle(Box::new(b));
                Ok(())
            }
            Tag::ComponentType | Tag::Category | Tag::LuCategory | Tag::Criticality => {
                let value = self.attr(e, b"value")?.unwrap_or_default();
                self.coded = Some(Coded {
                    value,
                    display: None,
                });
                Ok(())
            }
            Tag::ImportantInfo => {
                let url = self.attr(e, b"URL")?;
                match &mut self.owner {
                    Owner::Component(c) => c.important_info_url = url,
                    Owner::Bundle(b) => b.important_info_url = url,
                    Owner::None => {}
                }
                Ok(())
            }
            Tag::Display => {
                let lang = self.attr(e, b"lang")?;
                self.display_lang_en = lang
                    .as_deref()
                    .is_none_or(|l| l.eq_ignore_ascii_case("en") || l.is_empty());
                self.text = Some(String::new());
                Ok(())
            }
            Tag::Hash if parent == Tag::Cryptography => {
                self.hash_algorithm = self.attr(e, b"algorithm")?;
                self.text = Some(String::new());
                Ok(())
            }
            Tag::Device if parent == Tag::SupportedDevices => self.device(e),
            Tag::PciInfo if parent == Tag::Device => self.pci(e),
            Tag::RollbackInformation if parent == Tag::Device => self.rollback(e),
            Tag::Image if parent == Tag::PayloadConfiguration => self.image(e),
            Tag::Brand if matches!(parent, Tag::SupportedSystems | Tag::TargetSystems) => {
                self.brand(e, parent)
            }
            Tag::Model if parent == Tag::Brand => self.model(e),
            Tag::OperatingSystem
                if matches!(parent, Tag::SupportedOperatingSystems | Tag::TargetOses) =>
            {
                self.operating_system(e, parent)
            }
            Tag::FmpWrapperInformation if parent == Tag::FmpWrappers => self.fmp_wrapper(e),
            Tag::Inventory | Tag::Update if parent == Tag::FmpWrapperInformation => {
                self.fmp_child(tag, e)
            }
            Tag::Package if parent == Tag::Contents => {
                if let Some(path) = self.attr(e, b"path")?
                    && let Owner::Bundle(b) = &mut self.owner
                {
                    b.packages.push(basename(&path).to_string());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), CatalogError> {
        let Some(frame) = self.stack.last().copied() else {
            return Ok(());
        };
        match frame.tag {
            Tag::Display => {
                let text = self.text.take().unwrap_or_default();
                if text.trim().is_empty() {
                    return Ok(());
                }
                let en = self.display_lang_en;
                let Some(parent) = self.stack.iter_mut().rev().nth(1) else {
                    return Ok(());
                };
                let taken = parent.display_taken;
                let accept = if en { taken < 2 } else { taken == 0 };
                if !accept {
                    return Ok(());
                }
                parent.display_taken = if en { 2 } else { 1 };
                // Most texts need no trimming: keep the buffer, copy only if trimmed.
                let text = if text.trim().len() == text.len() {
                    text
                } else {
                    text.trim().to_string()
                };
                self.set_display(text);
            }
            Tag::Hash if self.parent() == Tag::Cryptography => {
                let value = self
                    .text
                    .take()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let algo = self
                    .hash_algorithm
                    .take()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
                    .replace('-', "");
                if let Owner::Component(c) = &mut self.owner
                    && !value.is_empty()
                {
                    match algo.as_str() {
                        "MD5" => c.hashes.md5 = Some(value),
                        "SHA1" => c.hashes.sha1 = Some(value),
                        "SHA256" => c.hashes.sha256 = Some(value),
                        _ => {}
                    }
                }
            }
            Tag::ComponentType | Tag::Category | Tag::LuCategory | Tag::Criticality => {
                let Some(coded) = self.coded.take() else {
                    return Ok(());
                };
                match (&mut self.owner, frame.tag) {
                    (Owner::Component(c), Tag::ComponentType) => c.component_type = Some(coded),
                    (Owner::Component(c), Tag::Category) => c.category = Some(coded),
                    (Owner::Component(c), Tag::LuCategory) => c.lu_category = Some(coded),
                    (Owner::Component(c), Tag::Criticality) => {
                        c.criticality =
                            Criticality::from_catalog(&coded.value, coded.display.as_deref());
                    }
                    (Owner::Bundle(b), Tag::ComponentType) => b.component_type = Some(coded),
                    (Owner::Bundle(b), Tag::Category) => b.category = Some(coded),
                    _ => {}
                }
            }
            Tag::SoftwareComponent if self.parent() == Tag::Manifest => {
                if let Owner::Component(c) = std::mem::replace(&mut self.owner, Owner::None)
                    && !c.path.is_empty()
                {
                    self.catalog.components.push(*c);
                }
            }
            Tag::SoftwareBundle if self.parent() == Tag::Manifest => {
                if let Owner::Bundle(b) = std::mem::replace(&mut self.owner, Owner::None) {
                    self.catalog.bundles.push(*b);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn set_display(&mut self, text: String) {
        let parent = self.parent();
        if parent == Tag::ReleaseNotes {
            self.catalog.manifest.release_notes = Some(text);
            return;
        }
        if let Some(coded) = self.coded.as_mut()
            && matches!(
                parent,
                Tag::ComponentType | Tag::Category | Tag::LuCategory | Tag::Criticality
            )
        {
            coded.display = Some(text);
            return;
        }
        let grand = self.grandparent();
        match &mut self.owner {
            Owner::Component(c) => match parent {
                Tag::Name => c.name = Some(text),
                Tag::Description => c.description = Some(text),
                Tag::RevisionHistory => c.revision_history = Some(text),
                Tag::Device => {
                    if let Some(d) = c.devices.last_mut() {
                        d.display = Some(text);
                    }
                }
                Tag::Brand if grand == Tag::SupportedSystems => {
                    if let Some(b) = c.systems.last_mut() {
                        b.display = Some(text);
                    }
                }
                Tag::Model => {
                    if let Some(m) = c.systems.last_mut().and_then(|b| b.models.last_mut()) {
                        m.display = Some(text);
                    }
                }
                Tag::OperatingSystem => {
                    if let Some(o) = c.operating_systems.last_mut() {
                        o.display = Some(text);
                    }
                }
                _ => {}
            },
            Owner::Bundle(b) => match parent {
                Tag::Name => b.name = Some(text),
                Tag::Description => b.description = Some(text),
                Tag::Brand if grand == Tag::TargetSystems => {
                    if let Some(br) = b.target_systems.last_mut() {
                        br.display = Some(text);
                    }
                }
                Tag::Model => {
                    if let Some(m) = b
                        .target_systems
                        .last_mut()
                        .and_then(|br| br.models.last_mut())
                    {
                        m.display = Some(text);
                    }
                }
                Tag::OperatingSystem => {
                    if let Some(o) = b.target_oses.last_mut() {
                        o.display = Some(text);
                    }
                }
                _ => {}
            },
            Owner::None => {}
        }
    }

    // ------------------------------------------------ attribute helpers

    /// Every attribute as (local name, unescaped value), borrowed from the
    /// event: only values that are kept get copied.
    fn attrs<'e>(&self, e: &'e BytesStart<'_>) -> Result<Vec<Attr<'e>>, CatalogError> {
        let mut out = Vec::with_capacity(8);
        for a in e.attributes().with_checks(true) {
            let a = a.map_err(|err| self.xml_error(err.into()))?;
            if a.key.as_ref().starts_with(b"xmlns") {
                continue;
            }
            let key = a.key.local_name().into_inner();
            let value = a.unescape_value().map_err(|err| self.xml_error(err))?;
            out.push((key, value));
        }
        Ok(out)
    }

    fn attr(&self, e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, CatalogError> {
        for a in e.attributes().with_checks(true) {
            let a = a.map_err(|err| self.xml_error(err.into()))?;
            if a.key.local_name().as_ref() == name {
                let v = a.unescape_value().map_err(|err| self.xml_error(err))?;
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    }

    fn date(&mut self, what: &str, v: &str) -> Option<DateTime<FixedOffset>> {
        let d = parse_date_time(v);
        if d.is_none() && !v.trim().is_empty() {
            self.warn(format!("unreadable {what} {v:?}"));
        }
        d
    }

    fn release_date(&mut self, v: &str) -> Option<NaiveDate> {
        let d = parse_release_date(v);
        if d.is_none() && !v.trim().is_empty() {
            self.warn(format!("unreadable releaseDate {v:?}"));
        }
        d
    }

    fn boolean(&mut self, what: &str, v: &str) -> Option<bool> {
        let b = parse_bool(v);
        if b.is_none() && !v.trim().is_empty() {
            self.warn(format!("unreadable boolean {what}={v:?}"));
        }
        b
    }

    fn manifest_attrs(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        for (k, v) in self.attrs(e)? {
            match k {
                b"baseLocation" => self.catalog.manifest.base_location = Some(v.into_owned()),
                b"baseLocationAccessProtocols" => {
                    self.catalog.manifest.base_location_access_protocols = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                }
                b"dateTime" => self.catalog.manifest.date_time = self.date("dateTime", &v),
                b"version" => self.catalog.manifest.version = Some(v.into_owned()),
                b"identifier" => self.catalog.manifest.identifier = Some(v.into_owned()),
                b"releaseID" => self.catalog.manifest.release_id = Some(v.into_owned()),
                b"predecessorID" => self.catalog.manifest.predecessor_id = Some(v.into_owned()),
                b"schemaVersion" => self.catalog.manifest.schema_version = Some(v.into_owned()),
                b"creationDateTime" => {
                    self.catalog.manifest.creation_date_time = self.date("creationDateTime", &v);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn inventory_component(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let mut ic = InventoryComponent::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"osCode" => ic.os_code = Some(v.into_owned()),
                b"path" => ic.path = v.into_owned(),
                b"hashMD5" => ic.hash_md5 = Some(v.to_ascii_lowercase()),
                b"vendorVersion" => ic.vendor_version = Some(v.into_owned()),
                b"dellVersion" => ic.dell_version = Some(v.into_owned()),
                b"releaseID" => ic.release_id = Some(v.into_owned()),
                b"releaseDate" => ic.release_date = self.release_date(&v),
                b"dateTime" => ic.date_time = self.date("dateTime", &v),
                b"schemaVersion" => ic.schema_version = Some(v.into_owned()),
                _ => {}
            }
        }
        self.catalog.inventory_components.push(ic);
        Ok(())
    }

    fn component_attrs(&mut self, e: &BytesStart<'_>) -> Result<SoftwareComponent, CatalogError> {
        let mut c = SoftwareComponent::default();
        let mut have_version = false;
        for (k, v) in self.attrs(e)? {
            match k {
                b"path" => c.path = v.into_owned(),
                b"vendorVersion" => {
                    have_version = true;
                    c.vendor_version = v.into_owned();
                }
                b"dellVersion" => c.dell_version = Some(v.into_owned()),
                b"releaseID" => c.release_id = Some(v.into_owned()),
                b"packageID" => c.package_id = Some(v.into_owned()),
                b"packageType" => c.package_type = Some(PackageType::parse(&v)),
                b"hashMD5" => {
                    let h = v.trim().to_ascii_lowercase();
                    if !h.is_empty() {
                        c.hashes.md5 = Some(h);
                    }
                }
                b"size" => match v.trim().parse::<u64>() {
                    Ok(s) => c.size = Some(s),
                    Err(_) => self.warn(format!("unreadable size {v:?}")),
                },
                b"dateTime" => c.date_time = self.date("dateTime", &v),
                b"releaseDate" => c.release_date = self.release_date(&v),
                b"rebootRequired" => c.reboot_required = self.boolean("rebootRequired", &v),
                b"schemaVersion" => c.schema_version = Some(v.into_owned()),
                b"identifier" => c.identifier = Some(v.into_owned()),
                _ => {}
            }
        }
        if c.path.trim().is_empty() || !have_version || c.vendor_version.trim().is_empty() {
            // Kept in the owner so its children parse, but marked for removal.
            self.skipped += 1;
            self.warn("SoftwareComponent without path or vendorVersion; skipped".into());
            c.path.clear();
        }
        Ok(c)
    }

    fn bundle_attrs(&mut self, e: &BytesStart<'_>) -> Result<SoftwareBundle, CatalogError> {
        let mut b = SoftwareBundle::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"schemaVersion" => b.schema_version = Some(v.into_owned()),
                b"releaseID" => b.release_id = Some(v.into_owned()),
                b"bundleID" => b.bundle_id = Some(v.into_owned()),
                b"dateTime" => b.date_time = self.date("dateTime", &v),
                b"vendorVersion" => b.vendor_version = Some(v.into_owned()),
                b"path" => b.path = Some(v.into_owned()),
                b"bundleType" => b.bundle_type = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(b)
    }

    fn component_mut(&mut self) -> Option<&mut SoftwareComponent> {
        match &mut self.owner {
            Owner::Component(c) => Some(c),
            _ => None,
        }
    }

    fn device(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let mut d = Device::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"componentID" => {
                    let v = v.trim();
                    if !v.is_empty() {
                        d.component_id = Some(v.to_string());
                    }
                }
                b"embedded" => d.embedded = self.boolean("embedded", &v),
                _ => {}
            }
        }
        if let Some(c) = self.component_mut() {
            c.devices.push(d);
        }
        Ok(())
    }

    fn pci(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let mut p = PciInfo::default();
        for (k, v) in self.attrs(e)? {
            let v = normalize_hex_id(&v);
            match k {
                b"vendorID" => p.vendor_id = v,
                b"deviceID" => p.device_id = v,
                b"subVendorID" => p.sub_vendor_id = v,
                b"subDeviceID" => p.sub_device_id = v,
                _ => {}
            }
        }
        if let Some(d) = self.component_mut().and_then(|c| c.devices.last_mut()) {
            d.pci.push(p);
        }
        Ok(())
    }

    fn rollback(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let mut r = RollbackInformation::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"rollbackIdentifier" => r.rollback_identifier = Some(v.into_owned()),
                b"alternateRollbackIdentifier" => {
                    r.alternate_rollback_identifier = Some(v.into_owned())
                }
                b"fmpWrapperIdentifier" => r.fmp_wrapper_identifier = Some(v.into_owned()),
                b"fmpWrapperVersion" => r.fmp_wrapper_version = Some(v.into_owned()),
                b"rollbackTimeout" => r.rollback_timeout = v.trim().parse().ok(),
                b"rollbackVolume" => r.rollback_volume = Some(v.into_owned()),
                b"impactsTPMmeasurements" => {
                    r.impacts_tpm_measurements = self.boolean("impactsTPMmeasurements", &v);
                }
                _ => {}
            }
        }
        if let Some(d) = self.component_mut().and_then(|c| c.devices.last_mut()) {
            d.rollback = Some(r);
        }
        Ok(())
    }

    fn image(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let mut i = PayloadImage::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"filename" => i.filename = Some(v.into_owned()),
                b"id" => i.id = Some(v.into_owned()),
                b"type" => i.image_type = Some(v.into_owned()),
                b"version" => i.version = Some(v.into_owned()),
                b"skip" => i.skip = self.boolean("skip", &v),
                _ => {}
            }
        }
        if self.grandparent() == Tag::Device
            && let Some(d) = self.component_mut().and_then(|c| c.devices.last_mut())
        {
            d.payload_images.push(i);
        }
        Ok(())
    }

    fn brand(&mut self, e: &BytesStart<'_>, parent: Tag) -> Result<(), CatalogError> {
        let mut b = Brand::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"key" => b.key = Some(v.into_owned()),
                b"prefix" => b.prefix = Some(v.into_owned()),
                _ => {}
            }
        }
        match (&mut self.owner, parent) {
            (Owner::Component(c), Tag::SupportedSystems) => c.systems.push(b),
            (Owner::Bundle(bu), Tag::TargetSystems) => bu.target_systems.push(b),
            _ => {}
        }
        Ok(())
    }

    fn model(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let mut m = Model::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"systemID" => {
                    let t = v.trim();
                    m.system_id_value = u32::from_str_radix(t, 16).ok();
                    m.system_id = t.to_ascii_uppercase();
                }
                b"systemIDType" => m.system_id_type = Some(v.into_owned()),
                _ => {}
            }
        }
        if m.system_id_value.is_none() {
            let id = m.system_id.clone();
            self.warn(format!("Model systemID {id:?} is not hex"));
        }
        let grand = self.grandparent();
        let brand = match &mut self.owner {
            Owner::Component(c) if grand == Tag::SupportedSystems => c.systems.last_mut(),
            Owner::Bundle(b) if grand == Tag::TargetSystems => b.target_systems.last_mut(),
            _ => None,
        };
        if let Some(b) = brand {
            b.models.push(m);
        }
        Ok(())
    }

    fn operating_system(&mut self, e: &BytesStart<'_>, parent: Tag) -> Result<(), CatalogError> {
        let mut o = OperatingSystem::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"osCode" => o.os_code = Some(v.into_owned()),
                b"osVendor" => o.os_vendor = Some(v.into_owned()),
                b"osArch" => o.os_arch = Some(v.into_owned()),
                b"majorVersion" => o.major_version = Some(v.into_owned()),
                b"minorVersion" => o.minor_version = Some(v.into_owned()),
                _ => {}
            }
        }
        match (&mut self.owner, parent) {
            (Owner::Component(c), Tag::SupportedOperatingSystems) => c.operating_systems.push(o),
            (Owner::Bundle(b), Tag::TargetOses) => b.target_oses.push(o),
            _ => {}
        }
        Ok(())
    }

    fn fmp_wrapper(&mut self, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let mut w = FmpWrapper::default();
        for (k, v) in self.attrs(e)? {
            match k {
                b"identifier" => w.identifier = Some(v.into_owned()),
                b"name" => w.name = Some(v.into_owned()),
                b"filePathName" => w.file_path_name = Some(v.into_owned()),
                b"driverFileName" => w.driver_file_name = Some(v.into_owned()),
                b"digitalSignature" => w.digital_signature = self.boolean("digitalSignature", &v),
                b"vendorCodeType" => w.vendor_code_type = Some(v.into_owned()),
                _ => {}
            }
        }
        if let Some(c) = self.component_mut() {
            c.fmp_wrappers.push(w);
        }
        Ok(())
    }

    fn fmp_child(&mut self, tag: Tag, e: &BytesStart<'_>) -> Result<(), CatalogError> {
        let attrs = self.attrs(e)?;
        let mut vals: Vec<(&[u8], Option<bool>, Cow<'_, str>)> = Vec::new();
        for (k, v) in attrs {
            let b = if k == b"source" {
                None
            } else {
                self.boolean("FMPWrapper flag", &v)
            };
            vals.push((k, b, v));
        }
        if let Some(w) = self.component_mut().and_then(|c| c.fmp_wrappers.last_mut()) {
            for (k, b, v) in vals {
                match (tag, k) {
                    (Tag::Inventory, b"source") => w.inventory_source = Some(v.into_owned()),
                    (Tag::Inventory, b"supported") => w.inventory_supported = b,
                    (Tag::Update, b"supported") => w.update_supported = b,
                    (Tag::Update, b"rollback") => w.update_rollback = b,
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- values

/// `1E0F`, `1e0f`, `0x1e0f` → `1E0F`; empty → `None`.
pub(crate) fn normalize_hex_id(v: &str) -> Option<String> {
    let t = v.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() {
        None
    } else {
        Some(t.to_ascii_uppercase())
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, any case.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// ISO-8601 with an offset or `Z`; a value without offset is read as UTC.
pub fn parse_date_time(v: &str) -> Option<DateTime<FixedOffset>> {
    let v = v.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(v) {
        return Some(d);
    }
    if let Ok(d) = DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(d);
    }
    NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().fixed_offset())
}

/// `May 27, 2024`, `July 25,2023` (no space), `Mar 3, 2017`, `2024-05-27`.
pub fn parse_release_date(v: &str) -> Option<NaiveDate> {
    let spaced = v.replace(',', ", ");
    let norm = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    for fmt in ["%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%Y-%m-%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(&norm, fmt) {
            return Some(d);
        }
    }
    None
}

#[cfg(test)]
mod tests;
