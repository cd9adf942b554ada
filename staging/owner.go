package staging

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// DefaultOwner is the owner given to everything ccmirror creates in the
// staging tree unless InstallOptions.Owner says otherwise.
const DefaultOwner = "cycle_server:cycle_server"

// Owner is a resolved USER:GROUP pair.
type Owner struct {
	Spec string `json:"spec"` // as given, e.g. "cycle_server:cycle_server"
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

// ResolveOwner looks up "USER:GROUP" (or "USER", meaning the user's primary
// group) by name; all-digit parts are taken as numeric ids. The error names
// what to fix.
func ResolveOwner(spec string) (Owner, error) {
	if spec == "" {
		spec = DefaultOwner
	}
	uname, gname, hasGroup := strings.Cut(spec, ":")
	if uname == "" || (hasGroup && gname == "") || strings.Contains(gname, ":") {
		return Owner{}, fmt.Errorf("owner %q: want USER:GROUP", spec)
	}
	o := Owner{Spec: spec}
	var primary string
	if isDigits(uname) {
		n, err := strconv.Atoi(uname)
		if err != nil {
			return Owner{}, fmt.Errorf("owner %q: uid %s: %v", spec, uname, err)
		}
		o.UID = n
	} else {
		u, err := user.Lookup(uname)
		if err != nil {
			return Owner{}, fmt.Errorf("owner %q: user %s does not exist on this server (create it, or pass --owner USER:GROUP)", spec, uname)
		}
		o.UID, _ = strconv.Atoi(u.Uid)
		primary = u.Gid
	}
	switch {
	case !hasGroup && primary != "":
		o.GID, _ = strconv.Atoi(primary)
	case !hasGroup:
		return Owner{}, fmt.Errorf("owner %q: a numeric uid needs a group too (USER:GROUP)", spec)
	case isDigits(gname):
		n, err := strconv.Atoi(gname)
		if err != nil {
			return Owner{}, fmt.Errorf("owner %q: gid %s: %v", spec, gname, err)
		}
		o.GID = n
	default:
		g, err := user.LookupGroup(gname)
		if err != nil {
			return Owner{}, fmt.Errorf("owner %q: group %s does not exist on this server (create it, or pass --owner USER:GROUP)", spec, gname)
		}
		o.GID, _ = strconv.Atoi(g.Gid)
	}
	return o, nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkCanChown fails early, with what to do about it, when this process may
// not give files to o.
func checkCanChown(o Owner) error {
	euid := os.Geteuid()
	if euid == 0 || euid == -1 {
		return nil
	}
	if o.UID != euid {
		return fmt.Errorf("owner %s: only root can give files to uid %d (running as uid %d): run install as root, or pass --owner with your own user", o.Spec, o.UID, euid)
	}
	groups, _ := os.Getgroups()
	if o.GID != os.Getegid() && !slices.Contains(groups, o.GID) {
		return fmt.Errorf("owner %s: uid %d is not a member of gid %d: run install as root, or pass --owner with one of your groups", o.Spec, euid, o.GID)
	}
	return nil
}
