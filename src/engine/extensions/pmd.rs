//! permessage-deflate (stand-in: never negotiated).
use super::negotiate::{ExtOffer, NegotiationError};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmdParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}
#[derive(Default)]
pub struct ServerPolicy {
    pub server_max_window_bits: u8,
}
pub fn server_accept(_offers: &[ExtOffer], _policy: &ServerPolicy) -> Option<(PmdParams, String)> {
    None
}
pub struct ClientOffer {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<Option<u8>>,
}
pub fn client_offer_string(_o: &ClientOffer) -> String {
    "permessage-deflate".into()
}
pub fn client_accept_response(
    _o: &ClientOffer,
    _r: &ExtOffer,
) -> Result<PmdParams, NegotiationError> {
    Err(NegotiationError("unsupported"))
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmdError {
    Corrupt,
    TooBig,
}
impl PmdError {
    pub fn close_code(self) -> u16 {
        match self {
            PmdError::Corrupt => 1007,
            PmdError::TooBig => 1009,
        }
    }
}
pub struct PmdSession;
impl PmdSession {
    pub fn new(_role: Role, _params: PmdParams, _max: usize) -> Self {
        PmdSession
    }
    pub fn compress_message(&mut self, _p: &[u8], _out: &mut Vec<u8>) -> Result<(), PmdError> {
        Err(PmdError::Corrupt)
    }
    pub fn decompress_fragment(
        &mut self,
        _i: &[u8],
        _fin: bool,
        _out: &mut Vec<u8>,
    ) -> Result<(), PmdError> {
        Err(PmdError::Corrupt)
    }
}
