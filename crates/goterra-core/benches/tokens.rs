#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Token encode and verify (criterion). Run: `scripts/bench/auth.sh` or
//! `cargo bench --workspace --bench tokens`.

use criterion::{Criterion, criterion_group, criterion_main};
use goterra_core::{Claims, Identity, Sensitive, TokenCodec};
use std::hint::black_box;

fn tokens(c: &mut Criterion) {
    let codec = TokenCodec::new(&[Sensitive::new("bench-secret-0123456789".into())], 24).unwrap();
    let claims = Claims::for_user(&Identity {
        uid: "alice".into(),
        admin: false,
        super_user: false,
        email: "alice@example.org".into(),
        kind: String::new(),
    });
    c.bench_function("token encode", |b| b.iter(|| codec.issue(black_box(&claims))));
    let token = codec.issue(&claims);
    c.bench_function("token verify", |b| {
        b.iter(|| codec.verify_issued(black_box(&token)).unwrap())
    });

    // The same work through the `fernet` crate (what the codec replaced), for the same run's
    // reference: claims to JSON and sealed; opened and JSON back to claims.
    let key = goterra_core::token::fernet_key_for_secret("bench-secret-0123456789");
    let fernet = fernet::Fernet::new(key.expose()).unwrap();
    c.bench_function("token encode, fernet crate", |b| {
        b.iter(|| fernet.encrypt(&serde_json::to_vec(black_box(&claims)).unwrap()))
    });
    c.bench_function("token verify, fernet crate", |b| {
        b.iter(|| serde_json::from_slice::<Claims>(&fernet.decrypt(black_box(&token)).unwrap()).unwrap())
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
