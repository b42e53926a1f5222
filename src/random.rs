//! Randomness from the OS (branch, tags, Call-ID, cnonce, contact user, jitter).

pub fn fill(buf: &mut [u8]) {
    // The OS source failing is not recoverable in a meaningful way; it does
    // not happen on Linux after boot.
    getrandom::fill(buf).expect("OS random source unavailable");
}

/// `n` random bytes as lowercase hex.
pub fn hex_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A uniform float in [lo, hi).
pub fn uniform(lo: f64, hi: f64) -> f64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    let x = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    lo + (hi - lo) * x
}

/// A version 4 UUID as `urn:uuid:…` (RFC 4122), for `+sip.instance`.
pub fn uuid_urn() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
