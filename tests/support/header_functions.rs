//! The `sip_*` functions a generated header declares: one declaration per
//! line at the start of a line, as cbindgen writes them. Shared by build.rs
//! (the linker's version script) and tests/install.rs (exported symbols).

/// Sorted, without duplicates.
pub fn header_functions(header: &str) -> Vec<String> {
    let mut names: Vec<String> = header
        .lines()
        .filter(|l| {
            l.contains('(')
                && !l.starts_with(' ')
                && !l.starts_with("typedef")
                && !l.starts_with('#')
        })
        .filter_map(|l| l.split('(').next())
        .filter_map(|l| l.split_whitespace().last())
        .map(|s| s.trim_start_matches('*').to_owned())
        .filter(|s| s.starts_with("sip_"))
        .collect();
    names.sort();
    names.dedup();
    names
}
