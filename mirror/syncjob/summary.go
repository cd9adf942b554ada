package syncjob

// Summary is what a run did, printed as JSON by `ccmirror sync --json`.
type Summary struct {
	// Config is the config file; Output the output folder; Index the
	// index.json path.
	Config string `json:"config"`
	Output string `json:"output"`
	Index  string `json:"index"`
	// Sequence is the sequence number of index.json after the run (0:
	// none written yet).
	Sequence int64 `json:"index_sequence"`
	// NothingNew is true when no bundle was written.
	NothingNew bool `json:"nothing_new"`
	// New are the bundles written by this run.
	New []Bundle `json:"new"`
	// Unchanged are the release versions already mirrored as they are on
	// GitHub now.
	Unchanged []Version `json:"unchanged"`
	// Changed are the releases whose assets changed on GitHub after they
	// were mirrored; each also has its new bundle in New (unless its
	// fetch failed, then it is in Failed too).
	Changed []Change `json:"changed_in_place"`
	// Published are the URLs uploaded by this run (SAS tokens left out).
	Published []string `json:"published"`
	// Failed are the policies, releases or uploads that failed; the run
	// went on with the others and returned an error.
	Failed []Failure `json:"failed"`
	// Downloaded is the number of bytes received from GitHub.
	Downloaded int64 `json:"bytes_downloaded"`
}

// Bundle is a bundle a run wrote.
type Bundle struct {
	Project    string   `json:"project"`
	Version    string   `json:"version"`
	Repository string   `json:"repository"`
	Tag        string   `json:"tag"`
	Commit     string   `json:"commit"`
	File       string   `json:"file"`
	Path       string   `json:"path"`
	Size       int64    `json:"size"`
	SHA256     string   `json:"sha256"`
	Revision   int      `json:"revision"`
	Policies   []string `json:"policies"`
	Downloaded int64    `json:"bytes_downloaded"`
	// Parts is the signed part list written beside the bundle with
	// Options.SplitSize.
	Parts string `json:"parts,omitempty"`
}

// Version is a release that needed nothing.
type Version struct {
	Project    string   `json:"project"`
	Version    string   `json:"version"`
	Repository string   `json:"repository"`
	Tag        string   `json:"tag"`
	File       string   `json:"file"`
	Policies   []string `json:"policies"`
}

// Change is a release whose assets were replaced on GitHub after it was
// mirrored.
type Change struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	// Assets are the names of the assets that differ (changed, added or
	// removed).
	Assets []string `json:"assets"`
	// Previous is the bundle made before the change; it is kept.
	Previous string `json:"previous"`
	// File is the new bundle, "" when its fetch failed.
	File    string `json:"file"`
	Message string `json:"message"`
}

// Failure is one thing that failed.
type Failure struct {
	Repository string `json:"repository,omitempty"`
	Policy     string `json:"policy,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Error      string `json:"error"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
