//! `sip_network_changed` (contract §8.3): the application tells the library
//! that the network changed, when it knows before the library does.

/// Tells the library that the network changed (an address, a link, a
/// route). The library also watches addresses and links by itself; this
/// makes it look again at once. Each registration whose way to its next
/// hop now leaves from another address registers again from there; one
/// waiting to retry retries now; no other is touched. Returns at once; the
/// work runs in the profile server of each store this process uses
/// (another process, or this one). Safe from any thread, and from a
/// callback.
#[unsafe(no_mangle)]
pub extern "C" fn sip_network_changed() {
    super::boundary::guard((), crate::client::network_changed);
}
