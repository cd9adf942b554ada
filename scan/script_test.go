package scan

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// scanText scans one file's text and returns its findings as
// "LINE KIND TARGET SATISFIED" strings, plus the notes.
func scanText(t *testing.T, name, text string, lim Limits) ([]string, []string) {
	t.Helper()
	c := newCollector(lim)
	if err := scanFile(context.Background(), c, name, "default", name, int64(len(text)), strings.NewReader(text)); err != nil {
		t.Fatalf("scan %s: %v", name, err)
	}
	var out []string
	for _, f := range c.findings {
		s := fmt.Sprintf("%d %s %s %v", f.Line, f.Kind, f.Target, f.Satisfied)
		if f.Kind == KindBlob && f.blobProject != "" {
			s += " project=" + f.blobProject
		}
		out = append(out, s)
	}
	return out, c.notes
}

func TestScanScript(t *testing.T) {
	tests := []struct {
		name, file, text string
		want             []string
	}{
		{"curl with continuation", "a.sh", "curl -fsSL -o /tmp/p.rpm \\\n  https://packages.microsoft.com/config/rhel/$V/packages-microsoft-prod.rpm\n",
			[]string{"1 url https://packages.microsoft.com/config/rhel/$V/packages-microsoft-prod.rpm false"}},
		{"wget in braces var", "a.sh", "wget -q https://github.com/prometheus/prometheus/releases/download/v${V}/prometheus-${V}.linux-amd64.tar.gz -O /tmp/p.tgz\n",
			[]string{"1 url https://github.com/prometheus/prometheus/releases/download/v${V}/prometheus-${V}.linux-amd64.tar.gz false"}},
		{"comment lines do not count", "a.sh", "#!/bin/bash\n# curl https://a.example.com/x\n   # dnf install -y foo\necho hi # pip install bar\n",
			nil},
		{"yum repo file", "slurm.repo", "[slurm]\n# baseurl=https://old.example.com\n; mirrorlist=https://semi.example.com\nbaseurl=https://packages.microsoft.com/yumrepos/slurm-el8\n",
			[]string{"4 url https://packages.microsoft.com/yumrepos/slurm-el8 false"}},
		{"deb line", "u.sh", `echo "deb [arch=amd64] https://packages.microsoft.com/repos/slurm-ubuntu-jammy/ insiders main" > /etc/apt/sources.list.d/s.list` + "\n",
			[]string{"1 url https://packages.microsoft.com/repos/slurm-ubuntu-jammy/ false"}},
		{"dnf with sudo and flags", "a.sh", "sudo -E dnf install -y --nogpgcheck epel-release\n",
			[]string{"1 package epel-release false"}},
		{"several commands per line", "a.sh", "dnf -y install munge && systemctl enable munge; apt-get install -y jq | tee log\n",
			[]string{"1 package munge false", "1 package jq false"}},
		{"env prefix and assignment", "a.sh", "DEBIAN_FRONTEND=noninteractive env -u X apt-get install -y -o Dpkg::Options::=--force-confold slurm-smd\n",
			[]string{"1 package slurm-smd false"}},
		{"zypper and tdnf", "a.sh", "zypper --non-interactive in -y munge\ntdnf install -y nfs-utils\n",
			[]string{"1 package munge false", "2 package nfs-utils false"}},
		{"enable powertools and crb", "a.sh", "dnf config-manager --set-enabled powertools\nyum-config-manager --enable crb\ndnf install -y --enablerepo=epel-testing x\n",
			[]string{"1 package powertools false", "2 package crb false", "3 package epel-testing false", "3 package x false"}},
		{"local rpm is satisfied", "a.sh", "yum install -y /tmp/openpbs-server-22.05.11-0.x86_64.rpm\n",
			[]string{"1 package /tmp/openpbs-server-22.05.11-0.x86_64.rpm true"}},
		{"dnf install of a URL is a URL", "a.sh", "dnf install -y https://dl.fedoraproject.org/pub/epel/epel-release-latest-8.noarch.rpm\n",
			[]string{"1 url https://dl.fedoraproject.org/pub/epel/epel-release-latest-8.noarch.rpm false"}},
		{"enablerepo before the verb", "a.sh", "dnf -y --enablerepo=powertools install -y perl-Switch\ndnf install munge\n",
			[]string{"1 package powertools false", "1 package perl-Switch false", "2 package munge false"}},
		{"local deb", "a.sh", "apt-get install -y ./slurm_23.11_amd64.deb\n",
			[]string{"1 package ./slurm_23.11_amd64.deb true"}},
		{"group install", "a.sh", "dnf group install -y \"Development Tools\"\n",
			[]string{"1 package Development Tools false"}},
		{"if and || ", "a.sh", "if ! rpm -q jq; then dnf install -y jq || yum install -y jq; fi\n",
			[]string{"1 package jq false"}},
		{"timeout and xargs prefixes", "a.sh", "timeout 300 pip install wheel\necho a b | xargs -n 1 dnf install -y\n",
			[]string{"1 pip wheel false"}},
		{"update is not an install", "a.sh", "apt-get update\nyum -y update\n", nil},
		{"pip names", "a.sh", "pip install wheel\npip3 install -U parallel-ssh==2.12.0\n",
			[]string{"1 pip wheel false", "2 pip parallel-ssh==2.12.0 false"}},
		{"python -m pip", "a.sh", "/opt/venv/bin/python3 -m pip install virtualenv\n${PYTHON} -m pip install --upgrade pip\n",
			[]string{"1 pip virtualenv false", "2 pip pip false"}},
		{"pip local paths", "a.sh", "pip install --no-deps packages/*\npip install /tmp/healthagent-1.0.3.tar.gz\n",
			[]string{"1 pip packages/* true", "2 pip /tmp/healthagent-1.0.3.tar.gz true"}},
		{"pip no-index", "a.sh", "pip install --no-index --find-links /opt/wheels wheel\n",
			[]string{"1 pip wheel true"}},
		{"pip requirements", "a.sh", "pip install -r requirements.txt\n",
			[]string{"1 pip requirements.txt false"}},
		{"pip from git", "a.sh", "pip install git+https://github.com/Azure/cyclecloud-scalelib.git@2.0.3\n",
			[]string{"1 git https://github.com/Azure/cyclecloud-scalelib.git@2.0.3 false"}},
		{"pip custom index", "a.sh", "pip install -i https://pypi.internal.example/simple foo\n",
			[]string{"1 pip foo false", "1 url https://pypi.internal.example/simple false"}},
		{"docker run with options", "a.sh", "docker run -d --gpus all --rm -p 9400:9400 -e X=1 nvcr.io/nvidia/k8s/dcgm-exporter:3.3.7-3.5.0-ubuntu22.04\n",
			[]string{"1 container nvcr.io/nvidia/k8s/dcgm-exporter:3.3.7-3.5.0-ubuntu22.04 false"}},
		{"docker -it and pull", "a.sh", "podman pull docker.io/library/ubuntu:22.04\ndocker run -it ubuntu bash\n",
			[]string{"1 container docker.io/library/ubuntu:22.04 false", "2 container ubuntu false"}},
		{"local registry", "a.sh", "docker pull localhost:5000/dcgm-exporter:3.3\n",
			[]string{"1 container localhost:5000/dcgm-exporter:3.3 true"}},
		{"enroot import", "a.sh", "enroot import -o /tmp/p.sqsh docker://nvcr.io#nvidia/pytorch:24.01-py3\n",
			[]string{"1 container docker://nvcr.io#nvidia/pytorch:24.01-py3 false"}},
		{"git clone", "a.sh", "git clone --depth 1 -b main https://github.com/Azure/cyclecloud-scalelib.git /opt/scalelib\ngit -C /opt clone /srv/local.git\n",
			[]string{"1 git https://github.com/Azure/cyclecloud-scalelib.git false", "2 git /srv/local.git true"}},
		{"jetpack download", "a.sh", "jetpack download --project slurm azure-slurm-install-pkg-4.0.9.tar.gz /tmp\n/opt/cycle/jetpack/bin/jetpack download healthagent.tgz\n",
			[]string{"1 blob azure-slurm-install-pkg-4.0.9.tar.gz false project=slurm", "2 blob healthagent.tgz false"}},
		{"bash -c", "a.sh", "bash -c 'dnf install -y nfs-utils'\n",
			[]string{"1 package nfs-utils false"}},
		{"redirections are not packages", "a.sh", "yum install -y foo > /dev/null 2>&1\n",
			[]string{"1 package foo false"}},
		{"metadata service is local", "a.sh", "curl -s -H Metadata:true http://169.254.169.254/metadata/instance?api-version=2021-02-01\n",
			[]string{"1 url http://169.254.169.254/metadata/instance?api-version=2021-02-01 true"}},
		{"powershell", "a.ps1", "# Invoke-WebRequest https://c.example.com/x\n<#\nInvoke-WebRequest https://block.example.com/x\n#>\nInvoke-WebRequest -Uri \"https://download.example.com/hpc.zip\" `\n  -OutFile C:\\hpc.zip\n",
			[]string{"5 url https://download.example.com/hpc.zip false"}},
		{"batch", "a.cmd", "REM curl https://rem.example.com/x\n:: curl https://colons.example.com/x\n@rem curl https://atrem.example.com/x\ncurl -o x.zip https://batch.example.com/x.zip\n",
			[]string{"4 url https://batch.example.com/x.zip false"}},
		{"python subprocess list", "install.py", "\"\"\"Run: pip install doc-only\n\"\"\"\nimport subprocess\n# pip install commented\nsubprocess.check_call([\"dnf\", \"install\", \"-y\", \"nfs-utils\", pkg])\n",
			[]string{"5 package nfs-utils false", "5 package {pkg} false"}},
		{"chef resources", "default.rb", "jetpack_download \"pbspro-server.rpm\" do\n  project \"pbspro\"\nend\npackage %w{munge jq}\nexecute \"yum install -y /tmp/x.rpm\"\n# package 'commented'\n",
			[]string{"1 blob pbspro-server.rpm false project=pbspro", "4 package munge false", "4 package jq false", "5 package /tmp/x.rpm true"}},
		{"python log messages are not commands", "x.py", "log.info(\"Running dnf install for %s\", pkg)\nraise Exception(\"git clone failed\")\nrun(\"git clone https://github.com/a/b.git\")\n",
			[]string{"3 git https://github.com/a/b.git false"}},
		{"python literals", "x.py", "cmds = [\"pip install a\", \"dnf install -y b\"]\nrun([\"pip\", \"install\", \"--no-deps\", wheel_path])\n",
			[]string{"1 pip a false", "1 package b false", "2 pip {wheel_path} false"}},
		{"chef lookalikes", "x.rb", "package_name = \"x\"\njetpack_downloads = 3\npackage('jq')\n",
			[]string{"3 package jq false"}},
		{"chef heredoc is shell", "r.rb", "bash 'x' do\n  code <<-EOH\n    pip install virtualenv\n  EOH\nend\n",
			[]string{"3 pip virtualenv false"}},
		{"javascript comments", "setup.js", "// execSync('pip install commented')\n/* curl https://block.example.com\n*/ execSync(\"pip install real\") // https://trailing.example.com\nconst u = 'https://cdn.example.com/x.js';\n",
			[]string{"3 pip real false", "4 url https://cdn.example.com/x.js false"}},
		{"dockerfile", "files/Dockerfile", "# FROM commented:1\nFROM --platform=linux/amd64 nvcr.io/nvidia/pytorch:24.01-py3 AS base\nRUN pip install wheel && \\\n    dnf install -y jq\nFROM scratch\n",
			[]string{"2 container nvcr.io/nvidia/pytorch:24.01-py3 false", "3 pip wheel false", "3 package jq false"}},
		{"echo is not an install", "a.sh", "echo yum install foo\n", nil},
		{"config without URL", "slurm.conf.template", "ClusterName={cluster}\n", nil},
		{"binary skipped", "a.bin", "\x00\x01curl https://x.example.com\n", nil},
		{"docs skipped", "README.md", "curl https://docs.example.com\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, notes := scanText(t, tt.file, tt.text, Limits{})
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(notes) > 0 {
				t.Errorf("notes: %v", notes)
			}
		})
	}
}
