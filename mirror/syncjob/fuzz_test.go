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
