//! What rustc says when a stack is put together wrong. The expected messages
//! are in `tests/ui/*.stderr` (for the pinned toolchain) and quoted in the
//! README's troubleshooting section; regenerate them with
//! `TRYBUILD=overwrite cargo test --all-features --test compile_fail`.

#[test]
fn streaming_bodies_without_buffering_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
