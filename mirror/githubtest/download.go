package githubtest

import (
	"net/http"
	"strings"
)

// serveDownload routes the download host:
//
//	/{owner}/{repo}/releases/download/{tag}/{asset}   release asset bytes
//	/{owner}/{repo}/archive/refs/tags/{tag}.tar.gz     tag archive (also .zip, and /archive/{tag}.tar.gz)
//	/{owner}/{repo}/legacy.tar.gz/{ref}                API tarball target (also legacy.zip)
//
// Asset bodies honour Range (206, 416), a strong ETag derived from the
// sha256 with If-None-Match (304; ignored with Options.IgnoreIfNoneMatch,
// as behind a proxy that strips conditional headers) and If-Range,
// Last-Modified and Content-Length. Archives come as GitHub's archive host
// (codeload) sends them: generated on the fly, chunked, without
// Content-Length, Range support or ETag.
func (s *Server) serveDownload(w *respWriter, r *http.Request) {
	if !isRead(r) {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(seg) < 3 {
		http.NotFound(w, r)
		return
	}
	rp := s.repoByPath(seg[0], seg[1])
	if rp == nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case len(seg) == 6 && seg[2] == "releases" && seg[3] == "download":
		rel := s.releaseByTag(rp, seg[4])
		if rel == nil {
			http.NotFound(w, r)
			return
		}
		a := s.assetByName(rel, seg[5])
		if a == nil {
			http.NotFound(w, r)
			return
		}
		s.serveAsset(w, r, a)
	case len(seg) >= 4 && seg[2] == "archive":
		ref := strings.Join(seg[3:], "/")
		kind := kindTarGz
		switch {
		case strings.HasSuffix(ref, ".tar.gz"):
			ref = strings.TrimSuffix(ref, ".tar.gz")
		case strings.HasSuffix(ref, ".zip"):
			ref, kind = strings.TrimSuffix(ref, ".zip"), kindZip
		default:
			http.NotFound(w, r)
			return
		}
		rel := s.releaseByTag(rp, strings.TrimPrefix(ref, "refs/tags/"))
		if rel == nil {
			http.NotFound(w, r)
			return
		}
		s.serveArchive(w, r, rel, kind)
	case len(seg) >= 4 && (seg[2] == kindLegacyTarGz || seg[2] == kindLegacyZip):
		rel := s.resolveRef(rp, strings.Join(seg[3:], "/"))
		if rel == nil {
			http.NotFound(w, r)
			return
		}
		s.serveArchive(w, r, rel, seg[2])
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveAsset(w *respWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", "attachment; filename="+a.name)
	h.Set("ETag", `"`+s.assetDigest(a)+`"`)
	if r.Method == http.MethodGet {
		a.download.Add(1)
	}
	if s.ignoreINM {
		r.Header.Del("If-None-Match")
	}
	w.shape(a.name)
	if hostileName(s.hostileNow().Endless, a.name) {
		s.serveEndless(w, r)
		return
	}
	http.ServeContent(w, r, a.name, a.updated, a.open())
}

func (s *Server) serveArchive(w *respWriter, r *http.Request, rel *release, kind string) {
	data, err := s.archive(rel, kind)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	name := archiveFilename(rel, kind)
	h := w.Header()
	if kind == kindZip || kind == kindLegacyZip {
		h.Set("Content-Type", "application/zip")
	} else {
		h.Set("Content-Type", "application/x-gzip")
	}
	h.Set("Content-Disposition", "attachment; filename="+name)
	h.Set("Access-Control-Allow-Origin", "https://render.githubusercontent.com")
	h.Set("Vary", "Authorization,Accept-Encoding,Origin")
	w.shape(name)
	if hostileName(s.hostileNow().Endless, name) {
		s.serveEndless(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodGet {
		return
	}
	// Flushed before the body: chunked, like a stream made as it is sent.
	w.Flush()
	if hostileName(s.hostileNow().ShortBodies, name) {
		// No Content-Length to lie about: half of the archive, then a
		// connection closed mid-stream.
		_, _ = w.Write(data[:len(data)/2])
		w.Flush()
		panic(http.ErrAbortHandler)
	}
	for off := 0; off < len(data); off += archiveChunk {
		if _, err := w.Write(data[off:min(off+archiveChunk, len(data))]); err != nil {
			return
		}
	}
}

// archiveChunk is how much of an archive is written at once.
const archiveChunk = 32 << 10
