//! Link flags of the extension module.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // On Apple targets the `libc` crate declares `#[link(name = "iconv")]` for bindings this
    // extension never calls, so without this the `.so` loads /usr/lib/libiconv.2.dylib (and,
    // with zig's stubs, libcharset.1.dylib) for nothing. `-dead_strip_dylibs` (ld64, ld-prime
    // and zig's linker alike) drops every dylib no symbol is bound to: the release check wants
    // /usr/lib/libSystem.B.dylib alone (`python -m sky_matrix.signoff.wheels`).
    if std::env::var("CARGO_CFG_TARGET_VENDOR").as_deref() == Ok("apple") {
        println!("cargo:rustc-link-arg-cdylib=-Wl,-dead_strip_dylibs");
    }
}
