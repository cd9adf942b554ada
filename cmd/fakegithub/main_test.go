package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-fail-rate", "2"},
		{"-bandwidth", "-1"},
		{"-latency", "-1s"},
		{"-blob-size", "-5"},
		{"-nope"},
		{"extra-arg"},
		{"-api-addr", "256.0.0.1:0"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "url")
	for _, data := range []string{"http://127.0.0.1:1/api/v3/\n", "http://127.0.0.1:2/api/v3/\n"} {
		if err := writeAtomic(p, data); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != data {
			t.Fatalf("ready file %q, %v; want %q", b, err, data)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
	if err := writeAtomic(filepath.Join(dir, "missing", "url"), "x"); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}
