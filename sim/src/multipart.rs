//! A small, lenient `multipart/form-data` parser (what iDRAC's upload
//! endpoints accept: extra part headers and unknown parts are ignored).

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
    pub(crate) data: Vec<u8>,
}

/// Extracts the boundary from a `Content-Type` value.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim().trim_matches('"');
            (!v.is_empty()).then(|| v.to_string())
        } else {
            None
        }
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Parses `body`; `None` when it is not well-formed multipart.
pub(crate) fn parse(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(parts);
        }
        // Skip the CRLF after the delimiter.
        if body.get(pos..pos + 2) == Some(b"\r\n") {
            pos += 2;
        } else if body.get(pos..pos + 1) == Some(b"\n") {
            pos += 1;
        }
        let (head_end, sep) = match (find(body, b"\r\n\r\n", pos), find(body, b"\n\n", pos)) {
            (Some(a), Some(b)) if b < a => (b, 2),
            (Some(a), _) => (a, 4),
            (None, Some(b)) => (b, 2),
            (None, None) => return None,
        };
        let headers = String::from_utf8_lossy(body.get(pos..head_end)?).into_owned();
        let data_start = head_end + sep;
        let next = find(body, delim, data_start)?;
        let mut data_end = next;
        if data_end >= 2 && body.get(data_end - 2..data_end) == Some(b"\r\n") {
            data_end -= 2;
        } else if data_end >= 1 && body.get(data_end - 1) == Some(&b'\n') {
            data_end -= 1;
        }
        let mut name = String::new();
        let mut filename = None;
        for line in headers.lines() {
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-disposition")
            {
                name = param(v, "name").unwrap_or_default();
                filename = param(v, "filename");
            }
        }
        parts.push(Part {
            name,
            filename,
            data: body.get(data_start..data_end.max(data_start))?.to_vec(),
        });
        pos = next + delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"UpdateParameters\"\r\nContent-Type: application/json\r\n\r\n{\"Targets\":[]}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"UpdateFile\"; filename=\"a.exe\"\r\nContent-Type: application/octet-stream\r\nX-Extra: 1\r\n\r\nAB\r\nCD\r\n--XyZ--\r\n";
        let b = boundary("multipart/form-data; boundary=XyZ").unwrap();
        let parts = parse(body, &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "UpdateParameters");
        assert_eq!(parts[1].filename.as_deref(), Some("a.exe"));
        assert_eq!(parts[1].data, b"AB\r\nCD");
        assert!(parse(b"junk", "XyZ").is_none());
        assert!(boundary("application/json").is_none());
    }
}
