// Package fuzz holds phiguard's Go native fuzz targets (`make fuzz`): every
// admission webhook fed arbitrary objects, the NetworkPolicy generated for
// any valid PHIWorkload, the merge of settings, and the parsing of backup
// schedules, durations and decision expiries. They are pure unit tests: the
// apiserver's own validation code runs in-process, and a fake client stands
// in for the manager's cache. Each target's seed corpus (f.Add, and
// testdata/fuzz/<target> for what fuzzing found) runs with `go test`.
package fuzz
