//! HTTP/1.x request heads: parsing (httparse), the `WSI_TOKEN_*` header table and the
//! small responses the library writes itself.

pub mod headers;
pub mod request;
pub mod response;
