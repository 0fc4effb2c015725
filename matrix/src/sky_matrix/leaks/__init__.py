"""Proof that the leaks suite (tests/leaks/) catches leaks: its canaries, on real interpreters.

The binding crate has a test-only Cargo feature, `leak-canary`, that makes
`base36_encode` leak 64 bytes of Rust heap per call, `hash_file` leak a file
descriptor per call and `truncate_long_string` leak a reference to its
argument. `python -m sky_matrix.leaks` builds that wheel, runs the leaks suite
against it in a fresh environment per interpreter and checks that each
detector failed exactly where its canary is, naming the function; then runs
the suite against the release wheel and checks that it comes out clean.
"""
