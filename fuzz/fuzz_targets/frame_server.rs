//! FrameParser in the server role (every frame must be masked) on arbitrary bytes fed in
//! reads of fuzz-chosen sizes; compared with one-read parsing and the reference model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websockets::engine::ws::Role;

fuzz_target!(|data: &[u8]| {
    websockets_fuzz::fuzz_frames(Role::Server, data);
});
