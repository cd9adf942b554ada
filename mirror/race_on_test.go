//go:build race

package mirror

// raceEnabled: the race detector multiplies a process's memory, so
// memory bounds are measured on a test binary built without it.
const raceEnabled = true
