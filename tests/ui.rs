//! Compile-time diagnostics of `#[workflow]` and `#[activity]`: each case in
//! `tests/ui/` must fail to compile with exactly the error in its `.stderr`;
//! each case in `tests/ui/pass/` must compile.

#[test]
fn diagnostics() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
