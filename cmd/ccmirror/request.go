package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/request"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror"
)

// requestRefs reads the request file of `fetch --request`: it checks the
// request's signature against --allowed-signers (namespace
// request.Namespace) when that flag is given, turns every wanted item into a
// Ref for its exact tag, and sets opts.Have so blobs the requesting server
// already holds with the same sha256 are listed as required instead of
// carried. Records the server could not resolve are logged as warnings.
func requestRefs(o *fetchOptions, opts *mirror.Options) ([]mirror.Ref, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		verify func(msg, sig []byte) error
		signer *trust.Identity
	)
	if o.AllowedSigners != "" {
		allowed, err := trust.LoadAllowedSigners(o.AllowedSigners)
		if err != nil {
			return nil, fmt.Errorf("fetch: allowed signers: %w", err)
		}
		verify = func(msg, sig []byte) error {
			id, err := allowed.Verify(msg, sig, request.Namespace, time.Now())
			if err != nil {
				return err
			}
			signer = id
			return nil
		}
	} else if _, err := os.Stat(request.SigPath(o.Request)); err == nil {
		log.Warn("the request is signed but its signature was NOT checked; pass --allowed-signers FILE to check it",
			"request", o.Request, "signature", request.SigPath(o.Request))
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Warn("cannot look for the request's signature", "err", err)
	}
	r, err := request.Load(o.Request, verify)
	if err != nil {
		return nil, fmt.Errorf("fetch --request: %w", err)
	}
	if signer != nil {
		log.Info("request signature good", "request", o.Request, "principal", signer.Principal, "key", signer.Fingerprint)
	}
	blobs := 0
	for _, p := range r.Inventory {
		blobs += len(p.Blobs)
	}
	log.Info("request read", "request", o.Request, "host", r.Hostname, "root", r.Root,
		"created", r.Created.Format(time.RFC3339), "wanted", len(r.Wanted), "staged_blobs", blobs)
	for _, u := range r.Unresolvable {
		log.Warn("the server knows a project version plan could not resolve; it is not fetched",
			"name", u.Name, "version", u.Version, "url", u.URL, "problem", u.Problem)
	}

	var refs []mirror.Ref
	seen := map[string]bool{}
	for _, it := range r.Wanted {
		if strings.EqualFold(it.Tag, mirror.Latest) {
			return nil, fmt.Errorf("fetch --request %s: wanted %s@%s: tag %q would fetch whatever release is newest; a request names exact tags: %w",
				o.Request, it.Name, it.Version, it.Tag, manifest.ErrVerify)
		}
		owner, repo, _ := strings.Cut(it.Repository, "/")
		ref := mirror.Ref{Owner: owner, Repo: repo, Version: it.Tag}
		key := it.Repository + "@" + it.Tag
		if seen[key] {
			continue
		}
		seen[key] = true
		log.Info("requested", "name", it.Name, "version", it.Version, "repository", it.Repository, "tag", it.Tag, "reason", it.Reason)
		refs = append(refs, ref)
	}

	staged := map[string]string{}
	for _, it := range r.Wanted {
		if it.Staged != "" {
			staged[it.Name+"@"+it.Version] = it.Staged
		}
	}
	if len(staged) > 0 {
		opts.Replaces = func(name, version string) string { return staged[name+"@"+version] }
	}
	have := map[string]string{}
	for _, p := range r.Inventory {
		for _, b := range p.Blobs {
			have[p.Name+"\x00"+b.Name] = b.SHA256
		}
	}
	opts.Have = func(project, blob, sha256 string) bool {
		s, ok := have[project+"\x00"+blob]
		return ok && s == sha256
	}
	return refs, nil
}
