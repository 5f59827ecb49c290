//go:build !race

package main

// raceEnabled reports whether the test runs with the race detector.
const raceEnabled = false
