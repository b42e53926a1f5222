//! In-process costs through the C API (criterion): typed getters, a lookup
//! by id with N profiles stored, server start with N stored profiles, one
//! durable save. N = 10,000 (200 under `cargo test`, which runs each once).
//!   cargo bench --bench api

use criterion::{Criterion, criterion_group};
use sipprofile::ffi::profile::*;
use sipprofile::ffi::registry::*;
use sipprofile::profile::keys::{
    SIP_KEY_PROFILE_ID, SIP_KEY_PROVIDER_NAME, SIP_KEY_SIG_COMP, SIP_KEY_USER_AOR,
};
use std::ffi::{CString, c_char};
use std::hint::black_box;
use std::ptr::null_mut;
use std::time::{Duration, Instant};

fn n_profiles() -> u32 {
    // `cargo test` runs benches with `--test` (criterion: once each) or no `--bench`.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test") {
        10_000
    } else {
        200
    }
}

fn store_with(n: u32) -> (std::path::PathBuf, CString) {
    let dir = std::env::temp_dir().join(format!("sipprofile-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.db");
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut m = null_mut();
    assert_eq!(
        sip_managed_profile_registry_new(c.as_ptr(), std::ptr::null(), &mut m),
        0
    );
    let ietf = sip_profile_type_info {
        profile_class: 0,
        name: name("IETF"),
    };
    for i in 0..n {
        let mut p = null_mut();
        assert_eq!(sip_managed_profile_registry_create(m, &ietf, &mut p), 0);
        let aor = CString::new(format!("sip:user{i}@example.com")).unwrap();
        assert_eq!(sip_profile_set_str(p, SIP_KEY_USER_AOR, aor.as_ptr()), 0);
        assert_eq!(sip_managed_profile_registry_save(m, p), 0);
        sip_profile_free(p);
    }
    sip_managed_profile_registry_free(m);
    (dir, c)
}

fn name(s: &str) -> [c_char; 26] {
    let mut n = [0 as c_char; 26];
    for (i, b) in s.bytes().enumerate() {
        n[i] = b as c_char;
    }
    n
}

fn api(c: &mut Criterion) {
    let n = n_profiles();
    let (dir, store) = store_with(n);

    // Server start with n stored profiles (first registry of the store).
    c.bench_function(&format!("server start, {n} stored profiles"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut r = null_mut();
                let t = Instant::now();
                assert_eq!(
                    sip_profile_registry_new(store.as_ptr(), std::ptr::null(), &mut r),
                    0
                );
                total += t.elapsed();
                sip_profile_registry_free(r);
            }
            total
        })
    });

    let mut m = null_mut();
    assert_eq!(
        sip_managed_profile_registry_new(store.as_ptr(), std::ptr::null(), &mut m),
        0
    );
    let mut p = null_mut();
    assert_eq!(sip_managed_profile_registry_profile(m, n / 2, &mut p), 0);

    c.bench_function("sip_profile_get_u32", |b| {
        let mut v = 0u32;
        b.iter(|| {
            black_box(sip_profile_get_u32(
                black_box(p),
                SIP_KEY_PROFILE_ID,
                &mut v,
            ))
        })
    });
    c.bench_function("sip_profile_get_bool", |b| {
        let mut v = false;
        b.iter(|| black_box(sip_profile_get_bool(black_box(p), SIP_KEY_SIG_COMP, &mut v)))
    });
    c.bench_function("sip_profile_get_str", |b| {
        let mut buf = [0 as c_char; 128];
        let mut len = 0usize;
        b.iter(|| {
            black_box(sip_profile_get_str(
                black_box(p),
                SIP_KEY_USER_AOR,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
            ))
        })
    });
    c.bench_function(&format!("registry_profile(id), {n} stored"), |b| {
        let mut i = 0u32;
        b.iter(|| {
            i = i % n + 1;
            let mut h = null_mut();
            assert_eq!(sip_managed_profile_registry_profile(m, i, &mut h), 0);
            sip_profile_free(h);
        })
    });
    c.bench_function("save (durable update)", |b| {
        let mut k = 0u32;
        b.iter(|| {
            k += 1;
            let v = CString::new(format!("name {k}")).unwrap();
            assert_eq!(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, v.as_ptr()), 0);
            assert_eq!(sip_managed_profile_registry_save(m, p), 0);
        })
    });
    sip_profile_free(p);
    sip_managed_profile_registry_free(m);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().configure_from_args().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    targets = api
}

fn main() {
    // `cargo test --all-targets` runs benches with --test: once each, small N.
    benches();
    Criterion::default().configure_from_args().final_summary();
}
