//! deflate-frame (stand-in: never negotiated).
use super::negotiate::ExtOffer;
use super::pmd::PmdError;
pub struct DeflateFrameSession;
impl DeflateFrameSession {
    pub fn new(_max: usize) -> Self {
        DeflateFrameSession
    }
    pub fn compress_frame(&mut self, _p: &[u8], _out: &mut Vec<u8>) -> Result<(), PmdError> {
        Err(PmdError::Corrupt)
    }
    pub fn decompress_frame(&mut self, _i: &[u8], _out: &mut Vec<u8>) -> Result<(), PmdError> {
        Err(PmdError::Corrupt)
    }
}
pub fn deflate_frame_server_accept(_offer: &ExtOffer) -> Option<String> {
    None
}
