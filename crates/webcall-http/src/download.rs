//! What every file download shares (attachments, recordings): the headers
//! that keep a browser from running or sniffing a file, the
//! `Content-Disposition` with the file's name, and one byte range at most.

use axum::http::{header, HeaderMap, HeaderValue};

pub(crate) fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// What every file and preview response carries: the browser may not sniff
/// it into something else, run it, or tell another site where it came from.
pub(crate) fn safety_headers(headers: &mut HeaderMap) {
    insert(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    insert(headers, header::CONTENT_SECURITY_POLICY, "sandbox");
    insert(headers, header::REFERRER_POLICY, "no-referrer");
    insert(headers, header::CACHE_CONTROL, "private, max-age=3600");
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`.
pub(crate) fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ranged {
    /// No range, several, or one we do not understand: the whole file.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A single range that lies beyond the file (416).
    Unsatisfiable,
}

pub(crate) fn parse_range(header: Option<&HeaderValue>, size: u64) -> Ranged {
    let Some(spec) = header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start: size - n.min(size),
                    end: size - 1,
                }
            }
        }
        // `a-`
        (false, Some(start), None) if last.trim().is_empty() => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start,
                    end: size - 1,
                }
            }
        }
        // `a-b`
        (false, Some(start), Some(end)) if start <= end => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Ranged {
        parse_range(Some(&HeaderValue::from_str(value).unwrap()), size)
    }

    #[test]
    fn single_ranges_of_each_form() {
        assert_eq!(parse_range(None, 10), Ranged::Whole);
        assert_eq!(range("bytes=0-4", 10), Ranged::Part { start: 0, end: 4 });
        assert_eq!(range("bytes=5-", 10), Ranged::Part { start: 5, end: 9 });
        assert_eq!(range("bytes=-3", 10), Ranged::Part { start: 7, end: 9 });
        assert_eq!(range("bytes=-30", 10), Ranged::Part { start: 0, end: 9 });
        assert_eq!(range("bytes=8-100", 10), Ranged::Part { start: 8, end: 9 });
        assert_eq!(range("bytes=9-9", 10), Ranged::Part { start: 9, end: 9 });
    }

    #[test]
    fn ranges_beyond_the_file_are_unsatisfiable() {
        assert_eq!(range("bytes=10-", 10), Ranged::Unsatisfiable);
        assert_eq!(range("bytes=10-20", 10), Ranged::Unsatisfiable);
        assert_eq!(range("bytes=-0", 10), Ranged::Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn several_or_malformed_ranges_are_the_whole_file() {
        for value in [
            "bytes=0-1,3-4",
            "bytes=5-2",
            "bytes=a-b",
            "bytes=",
            "bytes=-",
            "items=0-1",
            "bytes=1",
            "bytes=+1-2",
        ] {
            assert_eq!(range(value, 10), Ranged::Whole, "{value}");
        }
    }

    #[test]
    fn content_disposition_has_an_ascii_fallback_and_the_utf8_name() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("Отчёт \"1\".txt"),
            "attachment; filename=\"_____ _1_.txt\"; filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20%221%22.txt"
        );
    }
}
