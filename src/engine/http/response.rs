//! Responses the library itself writes: errors, file headers.

/// Reason phrase for the statuses the library produces.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A complete error response that tells the client the connection closes.
pub fn error_response(status: u16, extra_headers: &str) -> Vec<u8> {
    let body = format!(
        "<html><body><h1>{} {}</h1></body></html>",
        status,
        reason(status)
    );
    format!(
        "HTTP/1.1 {} {}\r\nServer: libwebsockets\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}",
        status,
        reason(status),
        body.len(),
        extra_headers,
        body
    )
    .into_bytes()
}

/// Header block of a file response.
pub fn file_header(content_type: &[u8], length: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    v.extend_from_slice(b"HTTP/1.0 200 OK\r\nServer: libwebsockets\r\nContent-Type: ");
    v.extend(content_type.iter().filter(|&&b| b != b'\r' && b != b'\n'));
    v.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", length).as_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn error_has_length_and_close() {
        let r = String::from_utf8(error_response(404, "")).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(r.contains("Connection: close"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        assert!(r.contains(&format!("Content-Length: {}", body.len())));
    }
    #[test]
    fn file_header_strips_crlf_injection() {
        let h = file_header(b"text/html\r\nX: y", 5);
        assert!(String::from_utf8(h)
            .unwrap()
            .contains("Content-Type: text/htmlX: y\r\n"));
    }
}
