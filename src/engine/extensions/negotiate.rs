//! Sec-WebSocket-Extensions parsing (minimal stand-in).
#[derive(Clone, Debug)]
pub struct ExtOffer {
    pub name: String,
    pub params: Vec<(String, Option<String>)>,
}
#[derive(Debug)]
pub struct NegotiationError(pub &'static str);
pub fn parse_extensions(header: &[u8]) -> Result<Vec<ExtOffer>, NegotiationError> {
    let s = std::str::from_utf8(header).map_err(|_| NegotiationError("not UTF-8"))?;
    Ok(s.split(',')
        .filter_map(|o| {
            let mut parts = o.split(';').map(str::trim);
            let name = parts.next()?.to_string();
            if name.is_empty() {
                return None;
            }
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_string(),
                        Some(v.trim().trim_matches('"').to_string()),
                    ),
                    None => (p.to_string(), None),
                })
                .collect();
            Some(ExtOffer { name, params })
        })
        .collect())
}
