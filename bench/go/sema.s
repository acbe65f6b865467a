// Intentionally empty: its presence allows bodyless (go:linkname) function
// declarations in this package.
