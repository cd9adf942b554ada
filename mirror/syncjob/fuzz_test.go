package syncjob

import (
	"errors"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("sign_key: agent:\noutput: out\nprojects:\n  - {ref: slurm, versions: latest}\n"))
	f.Add([]byte("sign_key: k\noutput: o\nprojects:\n  - ref: slurm@1\n    versions: [\"newest:0\"]\nprojets: []\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("projects:\n  - ref: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "mirror.yaml", "/etc/ccmirror")
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error does not match ErrConfig: %v", err)
			}
			return
		}
		if c.Output == "" || c.SignKey == "" || len(c.Projects) == 0 {
			t.Fatalf("accepted a config without output, sign_key or projects: %+v", c)
		}
		for _, p := range c.Projects {
			if p.Ref.Version != "" || len(p.Versions) == 0 {
				t.Fatalf("accepted project %+v", p)
			}
			for _, v := range p.Versions {
				if back, err := ParsePolicy(v.String()); err != nil || back != v {
					t.Fatalf("policy %+v does not round-trip: %v", v, err)
				}
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	ix := &Index{Schema: IndexSchema, Bundles: []Entry{{
		Project: "slurm", Version: "3.0.12", Repository: "Azure/cyclecloud-slurm", Tag: "3.0.12",
		Commit: "abc", File: "slurm-3.0.12.tar", Size: 10, Revision: 1,
		SHA256: "0000000000000000000000000000000000000000000000000000000000000000",
		Assets: []AssetPrint{{Name: "a.rpm", Size: 3, Digest: "sha256:00"}, {Name: "b", Size: 1, ID: 7}},
	}}}
	ix.Bundles[0].Fingerprint = Fingerprint(ix.Bundles[0].Assets)
	b, err := ix.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"schema":"ccmirror.index/v1","bundles":[]}`))
	f.Add([]byte(`{"schema":"ccmirror.index/v1","bundles":[{"file":"../x"}]} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			return
		}
		out, err := ix.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseIndex(out)
		if err != nil {
			t.Fatalf("a marshalled index does not parse: %v\n%s", err, out)
		}
		if len(again.Bundles) != len(ix.Bundles) {
			t.Fatalf("round trip lost bundles")
		}
		for _, e := range again.Bundles {
			if !validFileName(e.File) {
				t.Fatalf("unsafe file name %q accepted", e.File)
			}
		}
	})
}
