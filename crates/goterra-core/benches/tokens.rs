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
    c.bench_function("token verify", |b| b.iter(|| codec.verify_issued(black_box(&token)).unwrap()));
}

criterion_group!(benches, tokens);
criterion_main!(benches);
