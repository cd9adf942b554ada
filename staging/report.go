package staging

import (
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

// Action is what an install does (or would do) with one blob, file or
// version folder.
type Action string

// Plan actions.
const (
	ActionAdd      Action = "add"      // new: written by this install
	ActionSkip     Action = "skip"     // already staged with identical content
	ActionConflict Action = "conflict" // staged with different content; needs --force
	ActionReplace  Action = "replace"  // staged with different content; replaced (--force)
	ActionRemove   Action = "remove"   // staged but not in the bundle; removed with the old version (--force)
)

// Install outcomes, in InstallReport.Status.
const (
	StatusInstalled        = "installed"
	StatusAlreadyInstalled = "already-installed"
	StatusDryRun           = "dry-run"
	StatusConflict         = "conflict"
	StatusFailed           = "failed"
)

// SignerInfo says who signed a bundle: the allowed_signers principal that
// matched and the key.
type SignerInfo struct {
	Principal   string `json:"principal,omitempty"`
	Fingerprint string `json:"fingerprint"`
	KeyType     string `json:"key_type,omitempty"`
}

// PlanItem is one blob or one entry of a version folder in an install plan.
type PlanItem struct {
	Path   string `json:"path"` // blob name, or path inside the version folder
	Type   string `json:"type"` // "blob", "file", "dir", "symlink"
	Action Action `json:"action"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Target string `json:"target,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ProjectPlan is what an install does with one project version of a bundle.
type ProjectPlan struct {
	Name          string `json:"name"`
	Version       string `json:"version"`        // the staged folder, from project.ini
	BundleVersion string `json:"bundle_version"` // the version in the bundle's manifest
	Tag           string `json:"tag,omitempty"`
	Commit        string `json:"commit,omitempty"`
	Repository    string `json:"repository,omitempty"`
	// Dir is the staged version folder, R/work/staging/projects/<name>/<version>.
	Dir string `json:"dir"`
	// Action is the version folder's: add, skip (already installed),
	// conflict, or replace.
	Action Action     `json:"action"`
	Blobs  []PlanItem `json:"blobs"`
	Files  []PlanItem `json:"files"`
}

// InstallReport is the outcome of Install, or with DryRun its exact plan.
// Install returns it, as far as it got, together with any error.
type InstallReport struct {
	Bundle string `json:"bundle"`
	// HeadSHA256 identifies the bundle: the sha256 of its signed
	// SHA256SUMS, which names the hash of every other byte that matters.
	// Install hashes each byte once, so it does not hash the whole file
	// (verify reports that, as BundleSHA256).
	HeadSHA256   string        `json:"head_sha256,omitempty"`
	BundleSHA256 string        `json:"bundle_sha256,omitempty"`
	Signer       *SignerInfo   `json:"signer,omitempty"`
	Insecure     bool          `json:"insecure_skip_signature,omitempty"`
	Root         string        `json:"root"`
	Owner        Owner         `json:"owner"`
	Builder      string        `json:"builder,omitempty"`
	DryRun       bool          `json:"dry_run"`
	Force        bool          `json:"force"`
	Status       string        `json:"status"`
	Error        string        `json:"error,omitempty"`
	Projects     []ProjectPlan `json:"projects"`
	// Counts totals the actions on blobs (each once) and version folders,
	// plus the files --force removes from a replaced version.
	Counts   map[Action]int `json:"counts"`
	Warnings []string       `json:"warnings,omitempty"`
	Record   string         `json:"record,omitempty"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
}

// VerifyReport is what Verify found in a good bundle.
type VerifyReport struct {
	// BundleSHA256 is the sha256 of every byte of the bundle; "" with
	// VerifyOptions.SkipBundleSHA256.
	BundleSHA256 string `json:"bundle_sha256,omitempty"`
	// HeadSHA256 is the sha256 of its SHA256SUMS, which every payload was
	// proved against: it identifies the content, as install records do.
	HeadSHA256 string             `json:"head_sha256"`
	Signer     *SignerInfo        `json:"signer,omitempty"`
	Insecure   bool               `json:"insecure_skip_signature,omitempty"`
	Manifest   *manifest.Manifest `json:"manifest"`
	Files      int                `json:"files"` // payload files checked
	Bytes      int64              `json:"bytes"` // payload bytes checked
}

// SignatureInfo describes a bundle's signature without checking it.
type SignatureInfo struct {
	KeyType       string `json:"key_type"`
	Fingerprint   string `json:"fingerprint"`
	Namespace     string `json:"namespace"`
	HashAlgorithm string `json:"hash_algorithm"`
	Error         string `json:"error,omitempty"` // set when the signature cannot be parsed
}

// InspectReport is what the head of a bundle says, read without unpacking
// or checking the payload.
type InspectReport struct {
	Schema    string             `json:"schema"`
	Created   time.Time          `json:"created"`
	Tool      string             `json:"tool"`
	Signed    bool               `json:"signed"`
	Signature *SignatureInfo     `json:"signature,omitempty"`
	Projects  []manifest.Project `json:"projects"`
	Files     int                `json:"files"` // payload files
	Bytes     int64              `json:"bytes"` // payload bytes
}
